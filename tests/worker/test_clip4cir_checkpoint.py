"""A CLIP4Cir checkpoint in the released layout (OpenAI RN50x4-style CLIP + Combiner, tiny) registers, runs through
a real Celery worker and scores on an HP-FashionIQ-style benchmark exactly as the released forward pass would."""

import json
from io import StringIO

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from django.core.management import call_command
from PIL import Image as PILImage

from hpbench.catalog.models import Image, ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from hpbench.leaderboard.services import preference_figures
from models_zoo.clip4cir.bpe import BPE_FILE_NAME
from models_zoo.preprocess import ImagePreprocessor
from models_zoo.tiny import make_tiny_clip4cir_openai
from tests.models_zoo import openai_clip_reference as ref
from worker.embeddings import EmbeddingStore, embeddings_folder

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = [f"B00TINY{i:03d}" for i in range(12)]
QUESTIONS = [  # reference, target, sentence, set 1, set 2, likert 1, likert 2, preferred set
    (0, 1, "Is red and has long sleeves", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 4, 2, "1"),
    (2, 3, "Is shorter and is blue", [3, 4, 5, 6, 7], [8, 9, 10, 11, 0], 2, 5, "2"),
    (4, 5, "Has stripes and a collar", [5, 6, 7, 8, 9], [10, 11, 0, 1, 2], 3, 4, "2"),
    (6, 7, "Is darker with a pattern", [7, 8, 9, 10, 11], [0, 1, 2, 3, 4], 5, 1, "1"),
    (8, 9, "Is lighter and longer", [9, 10, 11, 0, 1], [2, 3, 4, 5, 6], 2, 3, "2"),
]


def _json(command, *args) -> dict | list:
    out = StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def _fashioniq_with_hpfiq(root):
    """A FashionIQ dress split of 12 distinct images, and an ``hpfiq.json`` in the released layout over them."""
    rng = np.random.default_rng(4)
    (root / "images").mkdir(parents=True)
    for n, name in enumerate(NAMES):
        size = (40 + 7 * n, 60) if n % 2 else (64, 64)  # some elongated: target padding applies
        PILImage.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
    (root / "image_splits").mkdir()
    (root / "image_splits" / "split.dress.val.json").write_text(json.dumps(NAMES))
    (root / "captions").mkdir()
    captions = [{"candidate": NAMES[0], "target": NAMES[1], "captions": ["is red", "has long sleeves"]}]
    (root / "captions" / "cap.dress.val.json").write_text(json.dumps(captions))

    def path(i):
        return f"/-/image_data/dress/{NAMES[i]}.jpg"

    block = {
        "ref_img_paths": [],
        "targ_img_paths": [],
        "sentences": [],
        "retrieved_set1": [],
        "retrieved_set2": [],
        "preferred set": [],
    }
    for reference, target, sentence, set1, set2, likert1, likert2, preferred in QUESTIONS:
        block["ref_img_paths"].append(path(reference))
        block["targ_img_paths"].append(path(target))
        block["sentences"].append(sentence)
        block["retrieved_set1"].append({"img_path": [path(i) for i in set1], "user_score": str(likert1)})
        block["retrieved_set2"].append({"img_path": [path(i) for i in set2], "user_score": str(likert2)})
        block["preferred set"].append(preferred)
    hpfiq = root / "hpfiq.json"
    hpfiq.write_text(json.dumps({"user_1": {"question_set_1": block}}))
    return hpfiq


def test_a_released_rn50x4_layout_clip4cir_scores_on_hp_fashioniq_through_a_worker(celery_worker_process, tmp_path):
    hpfiq = _fashioniq_with_hpfiq(tmp_path / "fiq")
    _json(
        "import_dataset",
        "fashioniq",
        str(tmp_path / "fiq"),
        "--name",
        "fiq",
        "--categories",
        "dress",
        "--splits",
        "val",
    )
    imported = _json("import_hpfiq", str(hpfiq), "--dataset", "fiq")
    assert imported["pairs"] == 5 and imported["missing_images"] == 0

    release = make_tiny_clip4cir_openai(tmp_path / "release", backbone="RN50x4")
    config = json.dumps({"clip_checkpoint": str(release / "clip.pt")})  # the BPE file lies beside the Combiner
    _json(
        "register_model",
        "clip4cir-rn50x4",
        "--family",
        "clip4cir",
        "--checkpoint",
        str(release / "combiner.pt"),
        "--config",
        config,
    )
    [row] = _json("score_model", "clip4cir-rn50x4", "--wait", "--timeout", "300")
    score = ModelScore.objects.get(pk=row["id"])
    assert score.status == "finished", score.error
    assert score.timings["images_encoded"] == 12 and score.timings["queries_encoded"] == 5

    # The released code's way, written independently: per question, encode the query and each set's images.
    clip = torch.load(release / "clip.pt", weights_only=True)["CLIP"]
    combiner = torch.load(release / "combiner.pt", weights_only=True)["Combiner"]
    assert clip["visual.attnpool.positional_embedding"].shape == (5, 256)  # 64 px, width 8 * 32
    tokenizer = ref.SimpleTokenizer(release / BPE_FILE_NAME)
    preprocess = ImagePreprocessor(size=64, pad_ratio=1.25)
    pixels = torch.stack([preprocess(tmp_path / "fiq" / "images" / f"{name}.png") for name in NAMES])
    with torch.no_grad():
        raw = ref.encode_image(clip, pixels)
        gallery = F.normalize(raw, dim=-1)
        set1, set2, human = [], [], []
        for reference, _, sentence, members1, members2, *_ in QUESTIONS:
            text = ref.encode_text(clip, tokenizer.tokenize([sentence]))
            query = ref.combine(combiner, raw[reference : reference + 1], text)
            set1.append((query @ gallery[members1].T).mean().item())
            set2.append((query @ gallery[members2].T).mean().item())
    benchmark = PreferenceBenchmark.objects.get(name="hp-fashioniq")
    human = list(benchmark.pairs.order_by("position").values_list("preference", flat=True))
    assert human == [1, 2, 2, 1, 2]
    expected = preference_figures(set1=set1, set2=set2, human=human)
    assert min(abs(a - b) for a, b in zip(set1, set2, strict=True)) > 1e-4  # no near-tie decides the figures
    assert score.agreement == pytest.approx(expected["agreement"])
    assert score.preference_ratio == pytest.approx(expected["preference_ratio"])
    assert score.n_pairs == 5 and score.n_model_ties == 0

    # The worker's cached gallery embeddings are the released forward pass's, to 1e-5.
    entry = ModelEntry.objects.get(name="clip4cir-rn50x4")
    images = dict(Image.objects.values_list("name", "id"))
    dataset_id = Image.objects.get(pk=images[NAMES[0]]).dataset_id
    index, stored = EmbeddingStore(f"{embeddings_folder(entry)}/dataset-{dataset_id}", "images").load()
    rows = [index[f"image-{images[name]}"] for name in NAMES]
    assert np.abs(stored[rows] - gallery.numpy()).max() <= 1e-5
