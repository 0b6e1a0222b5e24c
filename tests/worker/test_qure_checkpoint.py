"""A QuRe checkpoint in the released layout (``Blip2QuRe`` with the ``clip_L`` ViT, tiny and random) end to end:
registered with ``register_model``, ranked by a real Celery worker, and scored on an HP-FashionIQ-style benchmark
exactly as the released per-question loop scores it."""

from __future__ import annotations

import json
import time
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from hpbench.catalog.models import Dataset, Image, ModelEntry
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.figures import preference_figures
from hpbench.leaderboard.services.scores import model_scores_request
from models_zoo.blip2_cir.synthetic import make_tiny_qure_clip_l
from tests.catalog.conftest import build_fashioniq

pytestmark = pytest.mark.django_db(transaction=True)


def _json(command, *args) -> dict:
    out = StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def qure_file(tmp_path):
    """``model.pth`` without ViT weights, ``clip_vit_L.pth`` and ``vocab.txt`` beside it, as a user who kept
    LAVIS's ViT file next to the fine-tuned weights would have them."""
    return make_tiny_qure_clip_l(tmp_path / "qure", with_vit=False)


def _hpfiq_benchmark(tmp_path):
    """7 stand-in images (RGB, RGBA, palette and grey PNGs, as the datasets' files come) and 4 questions."""
    root = tmp_path / "images"
    root.mkdir()
    dataset = Dataset.objects.create(name="hp-fiq-mini", kind=Dataset.Kind.FASHIONIQ, image_root=str(root))
    rng = np.random.default_rng(5)
    ids = []
    for n, mode in enumerate(["RGB", "RGBA", "P", "L", "RGB", "RGBA", "RGB"]):
        pixels = PILImage.fromarray(rng.integers(0, 255, (30 + 7 * n, 26, 3), dtype=np.uint8))
        image = pixels.convert("P") if mode == "P" else pixels.convert(mode)
        if mode == "RGBA":
            image.putalpha(PILImage.fromarray(rng.integers(0, 255, image.size[::-1], dtype=np.uint8)))
        image.save(root / f"im{n}.png")
        ids.append(Image.objects.create(dataset=dataset, name=f"im{n}", category="dress", split="val",
                                        file_path=f"im{n}.png").pk)
    pairs = [
        PairSpec(reference_id=ids[0], text="is red", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]), preference=1),
        PairSpec(reference_id=ids[0], text="is red", set1=(ids[5], ids[6]), set2=(ids[1], ids[3]), preference=2),
        PairSpec(reference_id=ids[6], text="has long sleeves", set1=(ids[0], ids[2]), set2=(ids[4], ids[5]),
                 preference=1),
        PairSpec(reference_id=ids[3], text="is darker.", set1=(ids[2], ids[5]), set2=(ids[0], ids[1]),
                 preference=0),
    ]
    return benchmark_store(name="hp-fiq-mini", source="imported", dataset=dataset, pairs=pairs).benchmark, root


def test_a_released_layout_qure_checkpoint_registers_retrieves_and_scores_through_a_worker(
    celery_worker_process, tmp_path, qure_file
):
    registered = _json("register_model", "qure-tiny", "--family", "blip2_cir", "--variant", "qure",
                       "--checkpoint", str(qure_file))
    assert registered["family"] == "blip2_cir" and registered["checkpoint"] == str(qure_file.resolve())

    root = build_fashioniq(tmp_path / "fiq")
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress")
    run = _json("run_retrieval", "qure-tiny", "fiq", "--split", "val", "--topk", "3", "--wait", "--timeout", "180")
    assert run["status"] == "finished", run
    assert run["metrics"]["queries"] == 2 and run["metrics"]["dress"]["R@10"] == 100.0  # 4 gallery images

    benchmark, images_root = _hpfiq_benchmark(tmp_path)
    entry = ModelEntry.objects.get(name="qure-tiny")
    [score] = model_scores_request(model=entry, benchmarks=[benchmark])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        score.refresh_from_db()
        if score.status in ("finished", "failed"):
            break
        time.sleep(0.3)
    assert score.status == "finished", score.error
    assert score.timings["images_encoded"] == 7 and score.timings["queries_encoded"] == 3

    # QuRe's HP_FashionIQ/evaluate.py: per question and per set, encode the query, then the set's images, and
    # average model.score; here with the loader alone (model.pth + clip_vit_L.pth + vocab.txt), in this process.
    from models_zoo import load_model
    from models_zoo.encoding import encode_image_batches, encode_query_batches

    model = load_model("blip2_cir", qure_file, variant="qure")
    path = {i.pk: str(images_root / i.file_path) for i in Image.objects.filter(dataset__name="hp-fiq-mini")}
    set1, set2, human = [], [], []
    for pair in benchmark.pairs.order_by("position"):
        for out, members in ((set1, pair.set1_image_ids), (set2, pair.set2_image_ids)):
            query = encode_query_batches(model, [path[pair.reference_id]], [pair.text], device="cpu")
            gallery = encode_image_batches(model, [path[i] for i in members], device="cpu", batch_size=5)
            out.append(model.score(query, gallery).mean().item())
        human.append(pair.preference)
    expected = preference_figures(set1=set1, set2=set2, human=human)
    assert len(set(np.round(set1 + set2, 6))) > 4  # the sets get different scores: the comparison is not vacuous
    assert score.agreement == pytest.approx(expected["agreement"])
    assert score.preference_ratio == pytest.approx(expected["preference_ratio"])
    assert (score.n_pairs, score.n_human_ties) == (4, 1)
