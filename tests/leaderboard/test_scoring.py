"""Scoring a model on a benchmark: the encode-once path, and a real worker with a tiny CLIP."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from hpbench.catalog.models import Dataset, Image, ModelEntry
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.figures import preference_figures
from hpbench.leaderboard.services.scores import model_scores_request
from worker.scoring import PairInput, pair_set_scores


def test_every_image_and_query_is_encoded_once_and_sets_score_their_mean_relevance():
    # 3 pairs share images 10-13 and one query (same reference and text): 1 image call, 1 query call.
    pairs = [
        PairInput(reference_id=1, text="red", set1=(10, 11), set2=(12, 13)),
        PairInput(reference_id=1, text="red", set1=(12, 13), set2=(10, 11)),
        PairInput(reference_id=2, text="blue", set1=(10, 13), set2=(11, 12)),
    ]
    calls = {"images": [], "queries": []}
    value = {10: 1.0, 11: 3.0, 12: 2.0, 13: 0.0}

    def encode_images(ids):
        calls["images"].append(list(ids))
        return torch.tensor([[value[i]] for i in ids])

    def encode_queries(specs):
        calls["queries"].append([(s.reference_id, s.text) for s in specs])
        return torch.tensor([[1.0] if s.text == "red" else [-1.0] for s in specs])

    set1, set2 = pair_set_scores(pairs, encode_images=encode_images, encode_queries=encode_queries,
                                 score=lambda q, i: q @ i.T, chunk=2)
    assert calls["images"] == [[10, 11, 12, 13]]
    assert calls["queries"] == [[(1, "red"), (2, "blue")]]
    # "red" relevance = value; "blue" relevance = -value. Means by hand:
    assert set1.tolist() == [2.0, 1.0, -0.5] and set2.tolist() == [1.0, 2.0, -2.5]


def test_several_vectors_per_image_score_by_their_best_match():
    pairs = [PairInput(reference_id=1, text="t", set1=(1,), set2=(2,))]
    images = torch.tensor([[[1.0, 0.0], [0.0, 5.0]], [[2.0, 0.0], [0.0, 1.0]]])  # (2 images, 2 tokens, D=2)
    from models_zoo.base import CIRModel

    set1, set2 = pair_set_scores(pairs, encode_images=lambda ids: images,
                                 encode_queries=lambda specs: torch.tensor([[1.0, 1.0]]),
                                 score=lambda q, i: CIRModel.score(None, q, i))
    assert (set1[0], set2[0]) == (5.0, 2.0)


# --- a real worker ------------------------------------------------------------------------------


@pytest.fixture
def tiny_benchmark(tmp_path):
    """6 stand-in PNG images and 4 pairs over them."""
    root = tmp_path / "images"
    root.mkdir()
    dataset = Dataset.objects.create(name="tiny-fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(root))
    rng = np.random.default_rng(0)
    ids = []
    for n in range(6):
        PILImage.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"im{n}.png")
        ids.append(Image.objects.create(dataset=dataset, name=f"im{n}", category="shirt", split="val",
                                        file_path=f"im{n}.png").pk)
    pairs = [
        PairSpec(reference_id=ids[0], text="is red", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]), preference=1),
        PairSpec(reference_id=ids[0], text="is red", set1=(ids[3], ids[5]), set2=(ids[1], ids[2]), preference=2),
        PairSpec(reference_id=ids[5], text="has long sleeves", set1=(ids[0], ids[1]), set2=(ids[2], ids[4]),
                 preference=2),
        PairSpec(reference_id=ids[2], text="is darker", set1=(ids[4], ids[5]), set2=(ids[0], ids[3]),
                 preference=0),
    ]
    return benchmark_store(name="tiny", source="imported", dataset=dataset, pairs=pairs).benchmark, root


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_scores_a_tiny_clip_like_the_per_question_loop(celery_worker_process, tiny_benchmark, tmp_path):
    from models_zoo import load_model
    from models_zoo.encoding import encode_image_batches, encode_query_batches
    from models_zoo.tiny import make_tiny_clip

    benchmark, root = tiny_benchmark
    folder = make_tiny_clip(tmp_path / "tiny-clip")
    entry = ModelEntry.objects.create(name="tiny-clip", family="clip_zeroshot", variant="sum",
                                      checkpoint_path=str(folder))
    [score] = model_scores_request(model=entry, benchmarks=[benchmark])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        score.refresh_from_db()
        if score.status in ("finished", "failed"):
            break
        time.sleep(0.3)
    assert score.status == "finished", score.error
    assert score.timings["images_encoded"] == 6 and score.timings["queries_encoded"] == 3

    # The released code's way: re-encode the query and the set's images for every set of every question.
    model = load_model("clip_zeroshot", folder, variant="sum")
    path = {i.pk: str(root / i.file_path) for i in Image.objects.all()}
    set1, set2, human = [], [], []
    for pair in benchmark.pairs.order_by("position"):
        for out, members in ((set1, pair.set1_image_ids), (set2, pair.set2_image_ids)):
            q = encode_query_batches(model, [path[pair.reference_id]], [pair.text], device="cpu")
            images = encode_image_batches(model, [path[i] for i in members], device="cpu")
            out.append(model.score(q, images).mean().item())
        human.append(pair.preference)
    expected = preference_figures(set1=set1, set2=set2, human=human)
    assert score.agreement == pytest.approx(expected["agreement"])
    assert score.preference_ratio == pytest.approx(expected["preference_ratio"])
    assert (score.n_pairs, score.n_human_ties) == (4, 1)

    # Idempotent: the same task again leaves the finished row alone.
    from hpbench.celery import app

    assert app.send_task("gpu.scoring.score_model", args=[score.pk]).get(timeout=30) == "finished"
    assert ModelScore.objects.get(pk=score.pk).computed_at == score.computed_at
