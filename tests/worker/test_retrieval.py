"""Retrieval runs through a real Celery worker on PostgreSQL/Redis, with a tiny CLIP checkpoint."""

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from hpbench import media
from hpbench.catalog.models import Dataset, Query, RetrievalRun
from hpbench.catalog.results import read_topk_stored
from models_zoo.tiny import make_tiny_clip
from tests.catalog.conftest import build_cirr, build_fashioniq

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def _json(command, *args) -> dict:
    out = StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_a_worker_ranks_fashioniq_queries_and_reuses_cached_embeddings(celery_worker_process, tmp_path, tiny_clip):
    root = build_fashioniq(tmp_path / "fiq")
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress")
    _json("register_model", "tiny-clip", "--family", "clip_zeroshot", "--variant", "sum", "--checkpoint",
          str(tiny_clip))
    first = _json("run_retrieval", "tiny-clip", "fiq", "--split", "val", "--topk", "3", "--wait", "--timeout", "120")
    assert first["status"] == "finished"
    metrics = first["metrics"]
    assert metrics["protocol"] == "fashioniq" and metrics["queries"] == 2
    assert set(metrics["dress"]) == {"R@10", "R@50"}
    # A gallery of 4 images: every target is within the top 10.
    assert metrics["dress"]["R@10"] == 100.0 and metrics["avg"] == 100.0

    run = RetrievalRun.objects.get(pk=first["run"])
    topk = read_topk_stored(run.results_path)
    val_queries = list(Query.objects.filter(split="val").order_by("id"))
    assert sorted(topk.query_ids.tolist()) == [q.pk for q in val_queries]
    assert topk.image_ids.shape == (2, 3)
    gallery = set(Dataset.objects.get(name="fiq").images.filter(split="val").values_list("id", flat=True))
    assert set(topk.image_ids.ravel().tolist()) <= gallery
    assert np.all(np.diff(topk.scores, axis=1) <= 1e-6)  # best first
    assert "4 images and 2 queries newly encoded" in run.log

    second = _json("run_retrieval", "tiny-clip", "fiq", "--split", "val", "--topk", "3", "--wait")
    assert second["metrics"] == metrics
    assert "0 images and 0 queries newly encoded" in RetrievalRun.objects.get(pk=second["run"]).log


def test_cirr_runs_remove_the_reference_and_write_test1_submissions(celery_worker_process, tmp_path, tiny_clip):
    root = build_cirr(tmp_path / "cirr", test1_images=52)  # the official files list 50 images per query
    _json("import_dataset", "cirr", str(root), "--name", "cirr", "--splits", "val", "test1")
    _json("register_model", "tiny-clip", "--family", "clip_zeroshot", "--checkpoint", str(tiny_clip))
    val = _json("run_retrieval", "tiny-clip", "cirr", "--split", "val", "--topk", "4", "--wait", "--timeout", "120")
    assert val["status"] == "finished"
    assert {"R@1", "R@5", "Rsubset@1", "Rsubset@3", "avg"} <= set(val["metrics"])
    assert val["metrics"]["R@5"] == 100.0  # 4 candidates once the reference is removed
    run = RetrievalRun.objects.get(pk=val["run"])
    reference = Query.objects.get(key="val.7").reference_id
    assert reference not in read_topk_stored(run.results_path).image_ids.ravel().tolist()

    test = _json("run_retrieval", "tiny-clip", "cirr", "--split", "test1", "--topk", "4", "--wait")
    recall_path, subset_path = test["metrics"]["submission_files"]
    recall = json.loads(media.read_bytes(recall_path))
    subset = json.loads(media.read_bytes(subset_path))
    assert recall["version"] == "rc2" and recall["metric"] == "recall"
    assert subset["metric"] == "recall_subset"
    assert "test1-0-img0" not in recall["9"] and len(recall["9"]) == 50
    assert len(subset["9"]) == 3 and "test1-0-img0" not in subset["9"]


def test_a_broken_checkpoint_fails_the_run_with_a_readable_error(celery_worker_process, tmp_path):
    root = build_fashioniq(tmp_path / "fiq")
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    _json("register_model", "broken", "--family", "clip4cir", "--checkpoint", str(bad))
    with pytest.raises(CommandError, match="failed"):
        call_command("run_retrieval", "broken", "fiq", "--wait", "--timeout", "60", stdout=StringIO())
    run = RetrievalRun.objects.get()
    assert run.status == "failed"
    assert "CheckpointError" in run.error or "bad.safetensors" in run.error


def test_register_model_refuses_unknown_families_and_missing_checkpoints(tmp_path):
    with pytest.raises(CommandError, match="invalid choice: 'nope'"):
        call_command("register_model", "x", "--family", "nope", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("register_model", "x", "--family", "clip_zeroshot", "--checkpoint", str(tmp_path / "none"))
    with pytest.raises(CommandError, match="unknown variant 'fancy'"):
        call_command("register_model", "x", "--family", "clip_zeroshot", "--variant", "fancy")


def test_run_retrieval_refuses_a_split_without_queries(tmp_path, tiny_clip):
    root = build_fashioniq(tmp_path / "fiq")
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val")
    _json("register_model", "tiny-clip", "--family", "clip_zeroshot", "--checkpoint", str(tiny_clip))
    with pytest.raises(CommandError, match="no queries in split 'train'"):
        call_command("run_retrieval", "tiny-clip", "fiq", "--split", "train")


@pytest.mark.parametrize(
    "family, variant, builder",
    [
        ("clip_zeroshot", "mean", "make_tiny_clip"),
        ("clip4cir", "", "make_tiny_clip4cir"),
        ("blip2_cir", "qure", "make_tiny_blip2"),
        ("blip2_cir", "sprc", "make_tiny_blip2_lavis"),
        ("demo", "", "make_tiny_demo"),
    ],
)
def test_every_family_ranks_through_the_worker(celery_worker_process, tmp_path, family, variant, builder):
    import models_zoo.tiny

    checkpoint = getattr(models_zoo.tiny, builder)(tmp_path / "ckpt")
    root = build_fashioniq(tmp_path / "fiq")
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val")
    args = ["--variant", variant] if variant else []
    _json("register_model", f"tiny-{family}", "--family", family, "--checkpoint", str(checkpoint), *args)
    result = _json("run_retrieval", f"tiny-{family}", "fiq", "--topk", "4", "--wait", "--timeout", "120")
    assert result["status"] == "finished", RetrievalRun.objects.get(pk=result["run"]).log
    topk = read_topk_stored(RetrievalRun.objects.get(pk=result["run"]).results_path)
    assert topk.image_ids.shape == (2, 4)
    # Four gallery images, all ranked: each row is a permutation of the gallery.
    assert all(len(set(row)) == 4 for row in topk.image_ids.tolist())


def test_a_query_shows_each_visible_models_top_results(celery_worker_process, tmp_path, tiny_clip, client, outsider,
                                                       django_user_model):
    from hpbench.catalog.models import ModelEntry

    root = build_fashioniq(tmp_path / "fiq")
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val")
    _json("register_model", "public-clip", "--family", "clip_zeroshot", "--checkpoint", str(tiny_clip))
    owner = django_user_model.objects.create_user(username="owner", password="owner-pass-123")
    _json("register_model", "private-clip", "--family", "clip_zeroshot", "--checkpoint", str(tiny_clip),
          "--owner", "owner")
    ModelEntry.objects.filter(name="private-clip").update(is_public=False)
    for name in ("public-clip", "private-clip"):
        _json("run_retrieval", name, "fiq", "--topk", "4", "--wait", "--timeout", "120")
    query = Query.objects.get(key="dress.val.0")

    body = client.get(f"/api/queries/{query.pk}/results?k=3").json()
    assert [m["model"] for m in body["models"]] == ["public-clip"]
    assert len(body["models"][0]["results"]) == 3
    assert body["query"]["target"]["name"] == "Dva1"
    assert sum(r["is_target"] for r in body["models"][0]["results"]) <= 1

    client.force_login(owner)
    assert [m["model"] for m in client.get(f"/api/queries/{query.pk}/results").json()["models"]] == [
        "private-clip", "public-clip"]
    page = client.get(f"/queries/{query.pk}/").content.decode()
    assert "private-clip" in page and page.count('src="/images/') >= 2 + 2 * 4

    client.force_login(outsider)
    assert "private-clip" not in client.get(f"/queries/{query.pk}/").content.decode()
    image = client.get(f"/images/{query.reference_id}")
    assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\x89PNG")
    assert client.get("/images/999999").status_code == 404


def _official_fashioniq_recall(root, category, model) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Recall@10/50 of ``category`` as CLIP4Cir's ``fashioniq_val_retrieval`` computes it, written here from the
    official code: the gallery is the names of ``split.<category>.val.json``, the queries ``cap.<category>.val.json``
    (captions joined as ``"Cap1 and cap2"``), the reference not removed; a query counts at K when its target is
    among the K gallery names most similar to it. Also each query's full ranking (names)."""
    import torch
    from PIL import Image as PILImage

    names = json.loads((root / "image_splits" / f"split.{category}.val.json").read_text())
    entries = json.loads((root / "captions" / f"cap.{category}.val.json").read_text())

    def pixels(image_names):
        return model.preprocess([PILImage.open(root / "images" / f"{n}.png") for n in image_names])

    texts = [f"{e['captions'][0].strip('.?, ').capitalize()} and {e['captions'][1].strip('.?, ')}" for e in entries]
    with torch.inference_mode():
        gallery = model.encode_images(pixels(names))
        queries = model.encode_queries(pixels([e["candidate"] for e in entries]), texts)
        order = model.score(queries, gallery).argsort(dim=1, descending=True)
    ranked = [[names[i] for i in row] for row in order.tolist()]
    hits = {k: [e["target"] in row[:k] for e, row in zip(entries, ranked, strict=True)] for k in (10, 50)}
    recall = {f"R@{k}": 100.0 * sum(h) / len(h) for k, h in hits.items()}
    return recall, {f"{category}.val.{i}": row for i, row in enumerate(ranked)}


def test_an_image_listed_under_two_categories_counts_in_both_as_the_official_evaluation(
    celery_worker_process, tmp_path, tiny_clip
):
    from models_zoo import load_model
    from tests.catalog.conftest import SHARED, build_fashioniq_listed_twice

    root = build_fashioniq_listed_twice(tmp_path / "fiq", per_category=30)
    report = _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--splits", "val")
    assert report["skipped_queries"] == 0
    _json("register_model", "tiny-clip", "--family", "clip_zeroshot", "--variant", "sum", "--checkpoint",
          str(tiny_clip))
    run = _json("run_retrieval", "tiny-clip", "fiq", "--split", "val", "--topk", "50", "--wait", "--timeout", "180")
    assert run["status"] == "finished"
    metrics = run["metrics"]
    assert metrics["queries"] == 5 + 5 + 4 and metrics["skipped_queries"] == 0
    model = load_model("clip_zeroshot", tiny_clip, variant="sum")
    stored = RetrievalRun.objects.get(pk=run["run"])
    topk = read_topk_stored(stored.results_path)
    names = dict(Dataset.objects.get(name="fiq").images.values_list("id", "name"))
    keys = dict(Query.objects.values_list("id", "key"))
    rows = zip(topk.query_ids.tolist(), topk.image_ids.tolist(), strict=True)
    ours = {keys[q]: [names[i] for i in row if i >= 0] for q, row in rows}
    for category in ("dress", "shirt", "toptee"):
        expected, rankings = _official_fashioniq_recall(root, category, model)
        assert metrics[category] == pytest.approx(expected), category
        for key, ranking in rankings.items():
            assert sorted(ours[key]) == sorted(ranking)  # the whole gallery: the split file, the shared image too
    assert SHARED in ours["dress.val.1"] and SHARED in ours["shirt.val.1"]
