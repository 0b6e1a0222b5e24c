"""Score-file submissions end to end: a real worker scores them, the leaderboard marks them, and quota and
privacy are those of checkpoint submissions."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.models import ModelEntry, Query, RetrievalRun
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.scores import model_score_store
from tests.leaderboard.scorefile_fixtures import cirr_split, json_file, jsonl_file, relevance_rows, tiny_benchmark

VALUES = {"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.2, "e": 0.4, "f": 0.1}
CIRR_RECALL = {"version": "rc2", "metric": "recall", "7": ["c1", "c2", "c3", "c4"], "9": ["c0", "c2", "c3", "c1"]}
CIRR_SUBSET = {"version": "rc2", "metric": "recall_subset", "7": ["c2", "c1", "c3"], "9": ["c3", "c1"]}


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _post_scores(user, *files, **extra):
    return _client(user).post("/api/leaderboard/submissions", {"scores": list(files), **extra}, format="multipart")


def _wait(client, pk: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/leaderboard/submissions/{pk}").json()
        if body["status"] in ("finished", "failed", "cancelled"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"submission {pk} still {body['status']}: {body}")


@pytest.mark.django_db(transaction=True)
def test_a_score_file_submission_is_scored_by_a_real_worker_as_worked_out_by_hand_and_marked_on_the_board(
    celery_worker_process, researcher, outsider, fiq_dataset, tmp_path, client
):
    benchmark = tiny_benchmark(fiq_dataset)
    cirr_split(tmp_path)
    owner = _client(researcher)
    response = _post_scores(researcher, jsonl_file(relevance_rows(VALUES)), json_file(CIRR_RECALL, name="r.json"),
                            json_file(CIRR_SUBSET, name="s.json"), description="MGUR, our code",
                            link="https://example.org/mgur")
    assert response.status_code == 201, response.content
    created = response.json()
    # Accepted before a row is read: the worker checks the files, then scores them.
    assert created["family"] == "scores" and created["is_public"] is False and created["status"] == "submitted"
    body = _wait(owner, created["id"])
    assert body["status"] == "finished", body["log"]
    [score] = body["scores"]
    # Hand computation (tests/leaderboard/test_scorefiles.py): both decided pairs agree; Eq. 9 = 1 of 2.
    assert (score["agreement"], score["preference_ratio"], score["n_pairs"], score["n_human_ties"]) == (1.0, 0.5, 3, 1)
    [run] = body["runs"]
    assert run["status"] == "finished" and run["dataset"] == "cirr-split"
    assert (run["metrics"]["R@1"], run["metrics"]["R@5"], run["metrics"]["Rsubset@1"], run["metrics"]["avg"]) == (
        0.0, 100.0, 50.0, 75.0)

    # A model run on the platform beside it, for the mark.
    platform = ModelEntry.objects.create(name="platform-model", family="demo")
    row, _ = ModelScore.objects.get_or_create(model=platform, benchmark=benchmark)
    model_score_store(score_id=row.pk, set1=[1, 0, 1], set2=[0, 1, 0])
    name = Submission.objects.get(pk=created["id"]).model.name
    board = {r["model"]: r for r in owner.get("/api/leaderboard/benchmarks/tiny").json()["rows"]}
    assert board[name]["source"] == "authors" and board["platform-model"]["source"] == "platform"
    client.force_login(researcher)
    html = client.get("/leaderboard/tiny/").content.decode()
    assert "scores submitted by the authors" in html and "run on the platform" in html
    csv_text = owner.get("/api/leaderboard/benchmarks/tiny/csv").content.decode()
    assert f"{name}," in csv_text and ",authors," in csv_text

    # Private until published, like a checkpoint; the submitted rankings show on the query's results.
    spy = _client(outsider)
    assert spy.get(f"/api/leaderboard/submissions/{created['id']}").status_code == 404
    assert name not in [r["model"] for r in spy.get("/api/leaderboard/benchmarks/tiny").json()["rows"]]
    query = Query.objects.get(pairid=7)
    assert name not in [r["model"] for r in APIClient().get(f"/api/queries/{query.pk}/results").json()["models"]]
    assert owner.post(f"/api/leaderboard/submissions/{created['id']}/publish").json()["is_public"] is True
    assert name in [r["model"] for r in APIClient().get("/api/leaderboard/benchmarks/tiny").json()["rows"]]
    results = APIClient().get(f"/api/queries/{query.pk}/results").json()["models"]
    mine = next(r for r in results if r["model"] == name)
    assert [r["name"] for r in mine["results"]] == ["c1", "c2", "c3", "c4"] and mine["results"][0]["score"] is None

    # Idempotent: the task again leaves the finished score alone.
    from hpbench.celery import app

    assert app.send_task("default.scorefiles.score", args=[score_id := ModelScore.objects.get(
        model__name=name).pk]).get(timeout=30) == "finished"
    assert ModelScore.objects.get(pk=score_id).agreement == 1.0


def _checkpoint() -> SimpleUploadedFile:
    return SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2, 2), dtype=np.float32)}))


@pytest.mark.django_db
@override_settings(HPBENCH_SUBMISSIONS_PER_DAY=2)
def test_score_files_share_the_daily_quota_with_checkpoints(researcher, fiq_dataset):
    tiny_benchmark(fiq_dataset)
    client = _client(researcher)
    assert client.post("/api/leaderboard/submissions", {"family": "clip4cir", "file": _checkpoint()},
                       format="multipart").status_code == 201
    first = _post_scores(researcher, jsonl_file(relevance_rows(VALUES)))
    assert first.status_code == 201
    refused = _post_scores(researcher, jsonl_file(relevance_rows(VALUES)))
    assert refused.status_code == 429 and "2 of 2" in refused.json()["detail"]
    assert client.post(f"/api/leaderboard/submissions/{first.json()['id']}/cancel").json()["status"] == "cancelled"
    assert _post_scores(researcher, jsonl_file(relevance_rows(VALUES))).status_code == 429  # cancelled ones count


@pytest.mark.django_db
def test_a_score_file_submission_is_queued_only_where_it_has_files_on_the_default_queue(
    researcher, fiq_dataset, monkeypatch, django_capture_on_commit_callbacks
):
    from hpbench.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    benchmark = tiny_benchmark(fiq_dataset)
    with override_settings(HPBENCH_SUBMISSION_DATASETS=["fiq"]), django_capture_on_commit_callbacks(execute=True):
        response = _post_scores(researcher, jsonl_file(relevance_rows(VALUES)))
    submission = Submission.objects.get(pk=response.json()["id"])
    assert sent == [("default.scorefiles.check", [submission.pk])] and submission.status == "submitted"
    # The worker's check found the file good (its child process is tested in test_scorefiles.py).
    from hpbench.leaderboard.score_submissions import score_files_check_finish

    Submission.objects.filter(pk=submission.pk).update(status="running")
    [row] = submission.model.score_files.all()
    with override_settings(HPBENCH_SUBMISSION_DATASETS=["fiq"]), django_capture_on_commit_callbacks(execute=True):
        score_files_check_finish(submission_id=submission.pk, outcomes=[
            (row.pk, {"kind": "relevance", "rows": 12, "benchmark_id": benchmark.pk})])
    submission.refresh_from_db()
    assert not RetrievalRun.objects.filter(model=submission.model).exists()  # no ranking file: no retrieval run
    score = ModelScore.objects.get(model=submission.model, benchmark=benchmark)
    assert sent[1:] == [("default.scorefiles.score", [score.pk])] and submission.status == "queued"
    # An admin's "score every model" on another benchmark leaves a score-file model alone.
    from hpbench.leaderboard.services.scores import model_scores_request

    assert model_scores_request(model=submission.model, benchmarks=[]) == []
    assert "queued scoring from the score file on tiny-v1" in submission.log


@pytest.mark.django_db
def test_the_submissions_page_takes_score_files_and_shows_a_bad_name(researcher, fiq_dataset, client):
    tiny_benchmark(fiq_dataset)
    client.force_login(researcher)
    page = client.get("/submissions/").content.decode()
    assert 'name="scores"' in page and "/api/leaderboard/requests/benchmarks/tiny" in page
    script = client.post("/submissions/", {"scores": jsonl_file(relevance_rows(VALUES)), "link": "javascript:alert(1)"})
    assert script.status_code == 400 and "expected an http(s) URL" in script.content.decode()
    unknown = client.post("/submissions/", {"scores": jsonl_file(relevance_rows(VALUES), name="scores.csv")})
    assert unknown.status_code == 400 and "expected .jsonl or .parquet" in unknown.content.decode()
    good = client.post("/submissions/", {"scores": jsonl_file(relevance_rows(VALUES)), "description": "ours"})
    assert good.status_code == 302
    detail = client.get(good.url).content.decode()
    # Storage gives the file a suffix when an earlier test left a scores.jsonl in the same media folder.
    assert re.search(r"scores(_\w+)?\.jsonl", detail) and "not checked yet" in detail
    assert "scores submitted by the authors" in detail
    assert Submission.objects.get().family == "scores"
