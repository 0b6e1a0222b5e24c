"""Submissions API, access rules, and the leaderboard's JSON / CSV / pages."""

from __future__ import annotations

import csv
import io
import pickle

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.models import ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _checkpoint(name: str = "model.safetensors") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, save_safetensors({"w": np.zeros((2, 2), dtype=np.float32)}))


def _submit(client, **extra):
    data = {"family": "clip4cir", "file": _checkpoint(), "description": "mine", "config": '{"pad_ratio": 1.5}',
            **extra}
    return client.post("/api/leaderboard/submissions", data, format="multipart")


@pytest.fixture
def benchmark(fiq_dataset):
    from tests.leaderboard.conftest import make_images

    ids = list(make_images(fiq_dataset, {f"i{n}": "shirt" for n in range(5)}).values())
    pairs = [PairSpec(reference_id=ids[0], text=f"t{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                      preference=1 + n % 2) for n in range(6)]
    return benchmark_store(name="bench", source="imported", dataset=fiq_dataset, pairs=pairs).benchmark


def _finish(model, benchmark, set1):
    score, _ = ModelScore.objects.get_or_create(model=model, benchmark=benchmark)
    return model_score_store(score_id=score.pk, set1=set1, set2=[0.5] * 6)


def test_a_researcher_submits_a_checkpoint_and_it_is_queued_for_every_active_benchmark(researcher, benchmark):
    response = _submit(_client(researcher))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["is_public"] is False and body["config"] == {"pad_ratio": 1.5}
    submission = Submission.objects.get(pk=body["id"])
    assert submission.model.owner == researcher and not submission.model.is_public
    assert ModelScore.objects.filter(model=submission.model, benchmark=benchmark, status="queued").exists()
    listed = _client(researcher).get("/api/leaderboard/submissions").json()
    assert [s["id"] for s in listed] == [body["id"]]


def test_a_pickled_or_foreign_checkpoint_and_an_unknown_family_are_refused(researcher, benchmark):
    client = _client(researcher)
    pickled = SimpleUploadedFile("evil.pt", pickle.dumps({"w": 1}))
    response = _submit(client, file=pickled)
    assert response.status_code == 400 and "not a torch.save zip archive" in response.json()["detail"]
    response = _submit(client, file=SimpleUploadedFile("x.safetensors", b"\xff" * 16))
    assert response.status_code == 400 and "not a safetensors file" in response.json()["detail"]
    response = _submit(client, family="nope")
    assert response.status_code == 400 and "family 'nope'" in response.json()["detail"]
    response = _submit(client, config="[1, 2]")
    assert response.status_code == 400 and "config" in response.json()
    assert Submission.objects.count() == 0


@override_settings(HPBENCH_MAX_CHECKPOINT_BYTES=64)
def test_a_checkpoint_over_the_size_limit_is_refused(researcher, benchmark):
    response = _submit(_client(researcher), file=SimpleUploadedFile("big.safetensors", b"\0" * 65))
    assert response.status_code == 413 and "over the limit of 64 bytes" in response.json()["detail"]


@override_settings(HPBENCH_SUBMISSIONS_PER_DAY=3)
def test_the_daily_quota_counts_every_submission_cancelled_and_failed_ones_too(researcher, benchmark):
    from datetime import timedelta

    from django.utils import timezone

    client = _client(researcher)
    first = _submit(client).json()
    assert client.post(f"/api/leaderboard/submissions/{first['id']}/cancel").json()["status"] == "cancelled"
    second = _submit(client).json()
    Submission.objects.filter(pk=second["id"]).update(status="failed")
    assert _submit(client).status_code == 201
    refused = _submit(client)
    assert refused.status_code == 429 and "3 of 3" in refused.json()["detail"]
    # The window rolls: a submission older than 24 hours no longer counts.
    Submission.objects.filter(pk=first["id"]).update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert _submit(client).status_code == 201
    assert _submit(client).status_code == 429


def test_an_outsider_cannot_see_or_fetch_a_private_submission_its_scores_or_its_file(
    researcher, outsider, benchmark, client
):
    body = _submit(_client(researcher)).json()
    submission = Submission.objects.get(pk=body["id"])
    _finish(submission.model, benchmark, [1, 0, 1, 0, 1, 0])
    spy = _client(outsider)
    base = f"/api/leaderboard/submissions/{body['id']}"
    for url in (base, f"{base}/scores", f"{base}/file"):
        assert spy.get(url).status_code == 404, url
    for url in (f"{base}/cancel", f"{base}/publish"):
        assert spy.post(url).status_code == 404, url
    assert spy.get("/api/leaderboard/submissions").json() == []
    board = spy.get("/api/leaderboard/benchmarks/bench").json()
    assert submission.model.name not in [r["model"] for r in board["rows"]]
    assert submission.model.name not in APIClient().get("/api/leaderboard/benchmarks/bench/csv").content.decode()
    client.force_login(outsider)
    assert client.get(f"/submissions/{body['id']}/").status_code == 404
    assert client.get("/leaderboard/bench/").content.decode().count(submission.model.name) == 0
    # The owner sees all three, and their own private row on the leaderboard.
    owner = _client(researcher)
    assert owner.get(f"{base}/scores").json()[0]["agreement"] == 1.0
    assert owner.get(f"{base}/file").status_code == 200
    assert submission.model.name in [r["model"] for r in owner.get("/api/leaderboard/benchmarks/bench").json()["rows"]]


def test_publishing_shows_the_scores_to_everyone_but_never_the_file(researcher, outsider, benchmark):
    body = _submit(_client(researcher)).json()
    model = Submission.objects.get(pk=body["id"]).model
    _finish(model, benchmark, [1, 0, 1, 0, 1, 0])
    assert _client(researcher).post(f"/api/leaderboard/submissions/{body['id']}/publish").json()["is_public"]
    spy = _client(outsider)
    assert spy.get(f"/api/leaderboard/submissions/{body['id']}").status_code == 200
    assert spy.get(f"/api/leaderboard/submissions/{body['id']}/file").status_code == 404
    assert model.name in [r["model"] for r in APIClient().get("/api/leaderboard/benchmarks/bench").json()["rows"]]
    ModelEntry.objects.filter(pk=model.pk).update(is_hidden=True)
    assert APIClient().get("/api/leaderboard/benchmarks/bench").json()["rows"] == []


def test_an_anonymous_caller_cannot_submit(benchmark):
    assert APIClient().post("/api/leaderboard/submissions", {"family": "demo"}).status_code in (401, 403)


def test_the_submission_finishes_when_its_scores_do_and_fails_with_the_error_first(researcher, benchmark):
    from hpbench.leaderboard.services.submissions import submission_refresh

    body = _submit(_client(researcher)).json()
    submission = Submission.objects.get(pk=body["id"])
    _finish(submission.model, benchmark, [1, 0, 1, 0, 1, 0])
    assert submission_refresh(submission=submission).status == "finished"
    body = _submit(_client(researcher)).json()
    submission = Submission.objects.get(pk=body["id"])
    ModelScore.objects.filter(model=submission.model).update(status="failed", error="CheckpointError: bad keys")
    refreshed = submission_refresh(submission=submission)
    assert refreshed.status == "failed" and refreshed.log.startswith("ERROR score on bench-v1: CheckpointError")


def test_the_leaderboard_ranks_sorts_and_downloads_the_same_rows(benchmark, fiq_dataset):
    good = ModelEntry.objects.create(name="good", family="demo", is_baseline=True)
    bad = ModelEntry.objects.create(name="bad", family="demo")
    _finish(good, benchmark, [1, 0, 1, 0, 1, 0])  # agrees on all 6
    _finish(bad, benchmark, [0, 1, 0, 1, 0, 1])  # disagrees on all 6
    RetrievalRun.objects.create(model=good, dataset=fiq_dataset, status="finished",
                                metrics={"mean": {"R@10": 20.0, "R@50": 40.0}})
    board = APIClient().get("/api/leaderboard/benchmarks/bench").json()
    assert [(r["model"], r["rank"], r["agreement"]) for r in board["rows"]] == [("good", 1, 1.0), ("bad", 2, 0.0)]
    assert board["rows"][0]["recall"] == 30.0 and board["rows"][1]["recall"] is None
    assert board["rows"][0]["is_baseline"] is True
    ascending = APIClient().get("/api/leaderboard/benchmarks/bench?sort=agreement").json()
    assert [r["model"] for r in ascending["rows"]] == ["bad", "good"]
    rows = list(csv.DictReader(io.StringIO(APIClient().get("/api/leaderboard/benchmarks/bench/csv").content.decode())))
    assert [(r["model"], float(r["agreement"])) for r in rows] == [("good", 1.0), ("bad", 0.0)]
    assert APIClient().get("/api/leaderboard/benchmarks/nope").status_code == 404


def test_the_leaderboard_page_marks_baselines_higher_is_better_and_plots_the_intervals(benchmark, client):
    good = ModelEntry.objects.create(name="good", family="demo", is_baseline=True)
    _finish(good, benchmark, [1, 0, 1, 0, 1, 0])
    page = client.get("/leaderboard/bench/?sort=-preference_ratio")
    html = page.content.decode()
    assert page.status_code == 200
    assert "baseline" in html and "higher is better" in html and "<svg" in html and "good" in html
    assert client.get("/leaderboard/").status_code == 302  # one benchmark: straight to it


def test_the_submission_pages_list_detail_and_submit(researcher, benchmark, client):
    client.force_login(researcher)
    response = client.post("/submissions/", {"family": "clip4cir", "file": _checkpoint(), "config": ""})
    assert response.status_code == 302
    submission = Submission.objects.get()
    detail = client.get(response.url)
    assert detail.status_code == 200 and "queued" in detail.content.decode()
    assert "Submission" in client.get("/submissions/").content.decode()
    client.post(f"/submissions/{submission.pk}/cancel")
    submission.refresh_from_db()
    assert submission.status == "cancelled"
