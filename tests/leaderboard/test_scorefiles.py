"""Score files: request files, validation (every error names its row) and figures worked out by hand."""

from __future__ import annotations

import json
from unittest import mock

import pyarrow as pa
import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench.leaderboard.models import ScoreFile, Submission
from hpbench.leaderboard.scorefiles import (
    rankings_recall,
    read_rankings,
    read_relevance,
    relevance_set_scores,
)
from hpbench.leaderboard.services.figures import preference_figures
from tests.leaderboard.scorefile_fixtures import (
    cirr_split,
    fashioniq_split,
    json_file,
    jsonl_file,
    parquet_file,
    relevance_rows,
    tiny_benchmark,
)

pytestmark = pytest.mark.django_db

VALUES = {"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.2, "e": 0.4, "f": 0.1}


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _post(user, *files):
    return _client(user).post("/api/leaderboard/submissions", {"scores": list(files)}, format="multipart")


def _refused_on_the_worker(user, *files) -> str:
    """Submit; the upload is accepted (201, nothing read) and the worker's check (in-process here, its child
    processes real) fails the submission: returns the error the owner reads on the API, after checking that
    no file got a target."""
    from hpbench import dispatch
    from worker.scorefiles import score_files_check_execute

    send = dispatch.task_send_on_commit

    def keep_the_check_here(name: str, *args: object) -> None:  # not handed to the test run's session worker
        if name != dispatch.SCOREFILE_CHECK:
            send(name, *args)

    with mock.patch.object(dispatch, "task_send_on_commit", keep_the_check_here):
        response = _post(user, *files)
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert score_files_check_execute(submission_id=pk) == "failed"
    body = _client(user).get(f"/api/leaderboard/submissions/{pk}").json()
    assert body["status"] == "failed" and body["log"].startswith("ERROR "), body
    assert not ScoreFile.objects.filter(benchmark__isnull=False).exists()
    assert not ScoreFile.objects.filter(dataset__isnull=False).exists()
    return body["log"].splitlines()[0].removeprefix("ERROR ")


@pytest.fixture
def benchmark(fiq_dataset):
    return tiny_benchmark(fiq_dataset)


# --- request files --------------------------------------------------------------------------------------


def test_the_benchmark_request_lists_each_question_with_its_candidates_and_no_verdict(researcher, benchmark):
    response = _client(researcher).get("/api/leaderboard/requests/benchmarks/tiny")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('tiny-v1-request.jsonl"')
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert lines[1] == {"question": "tiny-v1/1", "reference": "a", "text": "t1", "images": ["b", "c", "d", "f"]}
    assert all("preference" not in line and "set1" not in line for line in lines) and len(lines) == 3
    assert APIClient().get("/api/leaderboard/requests/benchmarks/tiny").status_code in (401, 403)
    assert _client(researcher).get("/api/leaderboard/requests/benchmarks/nope").status_code == 404


def test_the_split_request_lists_queries_as_the_model_sees_them_and_the_galleries_without_targets(
    researcher, tmp_path
):
    cirr_split(tmp_path)
    fashioniq_split(tmp_path)
    body = _client(researcher).get("/api/leaderboard/requests/datasets/cirr-split/val").json()
    assert body["protocol"] == "cirr" and body["depth"] == 50 and body["reference_removed"] is True
    assert body["galleries"] == {"all": ["c0", "c1", "c2", "c3", "c4"]}
    assert body["queries"][0] == {"id": "7", "reference": "c0", "text": "two dogs", "gallery": "all",
                                  "subset": ["c1", "c2", "c3"]}
    fiq = _client(researcher).get("/api/leaderboard/requests/datasets/fiq-split/val").json()
    assert fiq["queries"][0]["text"] == "Is red and has sleeves" and fiq["queries"][0]["gallery"] == "dress"
    assert sorted(fiq["galleries"]) == ["dress", "shirt"] and "target" not in json.dumps(fiq)
    assert _client(researcher).get("/api/leaderboard/requests/datasets/cirr-split/test1").status_code == 404


# --- relevance files: figures ---------------------------------------------------------------------------


def test_relevance_from_a_file_gives_the_set_means_and_figures_worked_out_by_hand(benchmark):
    parsed = read_relevance(jsonl_file(relevance_rows(VALUES)), name="s.jsonl", suffix=".jsonl")
    set1, set2 = relevance_set_scores(parsed)
    # pair 0: {b, c} = 0.8 vs {d, e} = 0.3; pair 1: {d, f} = 0.15 vs {b, c} = 0.8; pair 2: {a, b} = 0.7 vs {c, d} = 0.45
    assert set1.tolist() == pytest.approx([0.8, 0.15, 0.7]) and set2.tolist() == pytest.approx([0.3, 0.8, 0.45])
    figures = preference_figures(set1=set1, set2=set2, human=[1, 2, 0])
    # agreement: both decided pairs agree; Eq. 9: the model prefers set 1 on pairs 0 and 2, people on pair 0 only
    assert figures["agreement"] == 1.0 and figures["preference_ratio"] == 0.5 and figures["n_human_ties"] == 1


def test_a_parquet_file_reads_like_the_same_json_lines(benchmark):
    rows = relevance_rows(VALUES)
    table = pa.table({k: [r[k] for r in rows] for k in ("question", "image", "score")})
    parsed = read_relevance(parquet_file(table), name="s.parquet", suffix=".parquet")
    assert parsed.relevance == read_relevance(jsonl_file(rows), name="s.jsonl", suffix=".jsonl").relevance


# --- relevance files: every error is a 400 naming its row -----------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[:-1], "no score for question 'tiny-v1/2' image 'd'"),
        (lambda rows: [*rows, rows[0]], "line 13: question 'tiny-v1/0' image 'b' appears twice (first at line 1)"),
        (lambda rows: ['{"question": "tiny-v1/0", "image": "b", "score": NaN}', *rows[1:]],
         "line 1: score nan for question 'tiny-v1/0' image 'b' is not a finite number"),
        (lambda rows: [*rows[:4], {"question": "tiny-v1/1", "image": "b"}, *rows[5:]],
         "line 5: missing field(s) score"),
        (lambda rows: [*rows[:2], {**rows[2], "score": "high"}], "line 3: score 'high'"),
        (lambda rows: [{**rows[0], "image": "a"}, *rows[1:]],
         "line 1: image 'a' is not a candidate of question 'tiny-v1/0'"),
        (lambda rows: [{**rows[0], "question": "tiny-v9/0"}], "line 1: question 'tiny-v9/0' names no benchmark here"),
        (lambda rows: [*rows[:6], "{not json"], "line 7: not valid JSON"),
        (lambda rows: [*rows[:3], {**rows[3], "rank": 1}], "line 4: unknown field(s) 'rank'"),
    ],
    ids=["missing", "duplicate", "nan", "missing-field", "not-a-number", "unknown-image", "unknown-benchmark",
         "bad-json", "extra-field"],
)
@pytest.mark.django_db(transaction=True)
def test_a_bad_relevance_file_fails_the_submission_naming_the_row(researcher, benchmark, edit, message):
    error = _refused_on_the_worker(researcher, jsonl_file(edit(relevance_rows(VALUES))))
    assert message in error and error.startswith("file 'scores.jsonl'")


def test_a_parquet_file_of_the_wrong_shape_gets_a_400_from_its_metadata_alone(researcher, benchmark):
    rows = relevance_rows(VALUES)
    wrong = pa.table({"question": [r["question"] for r in rows], "image": [r["image"] for r in rows],
                      "relevance": [r["score"] for r in rows]})
    response = _post(researcher, parquet_file(wrong))
    assert response.status_code == 400 and "missing column(s) score" in response.json()["detail"]
    response = _post(researcher, jsonl_file(relevance_rows(VALUES), name="scores.parquet"))
    assert response.status_code == 400 and "not a Parquet file" in response.json()["detail"]
    assert Submission.objects.count() == 0 and ScoreFile.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_bad_parquet_row_fails_the_submission_naming_the_row(researcher, benchmark):
    rows = relevance_rows(VALUES)
    scores = [r["score"] for r in rows]
    scores[1] = float("inf")
    bad = pa.table({"question": [r["question"] for r in rows], "image": [r["image"] for r in rows], "score": scores})
    assert "file 'scores.parquet', row 2: score inf" in _refused_on_the_worker(researcher, parquet_file(bad))


@override_settings(HPBENCH_MAX_SCORE_FILE_BYTES=100)
def test_a_score_file_over_the_size_limit_or_of_an_unknown_kind_is_refused(researcher, benchmark):
    response = _post(researcher, jsonl_file(relevance_rows(VALUES)))
    assert response.status_code == 400 and "over the score-file limit of 100 bytes" in response.json()["detail"]
    response = _post(researcher, jsonl_file(relevance_rows(VALUES)[:1], name="scores.csv"))
    assert response.status_code == 400 and "expected .jsonl or .parquet" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_two_files_for_the_same_benchmark_are_refused(researcher, benchmark):
    rows = relevance_rows(VALUES)
    error = _refused_on_the_worker(researcher, jsonl_file(rows, name="one.jsonl"), jsonl_file(rows, name="two.jsonl"))
    assert "'two.jsonl': scores tiny-v1 again (already in 'one.jsonl')" in error


# --- ranking files ----------------------------------------------------------------------------------------


def _fiq_rankings() -> dict:
    return {
        "version": "rc2", "metric": "recall",
        # target d1 first (rank 0); target d3 last of 12 (rank 11: outside R@10); target s2 third (rank 2)
        "dress.val.0": ["d1", "d0", *[f"d{i}" for i in range(2, 12)]],
        "dress.val.1": [f"d{i}" for i in range(12) if i != 3] + ["d3"],
        "shirt.val.0": ["s0", "s1", "s2"],
    }


def test_fashioniq_rankings_give_recall_per_category_worked_out_by_hand(tmp_path):
    fashioniq_split(tmp_path)
    parsed = read_rankings(json_file(_fiq_rankings()), name="r.json")
    metrics = rankings_recall(parsed.protocol, {"recall": parsed})
    assert metrics["dress"] == {"R@10": 50.0, "R@50": 100.0} and metrics["shirt"] == {"R@10": 100.0, "R@50": 100.0}
    assert metrics["mean"] == {"R@10": 75.0, "R@50": 100.0} and metrics["avg"] == 87.5


def test_cirr_rankings_in_the_official_shape_give_recall_and_recall_subset_worked_out_by_hand(tmp_path):
    cirr_split(tmp_path)
    recall = read_rankings(json_file({"version": "rc2", "metric": "recall", "7": ["c1", "c2", "c3", "c4"],
                                      "9": ["c0", "c2", "c3", "c1"]}), name="r.json")
    subset = read_rankings(json_file({"version": "rc2", "metric": "recall_subset", "7": ["c2", "c1", "c3"],
                                      "9": ["c3", "c1"]}), name="s.json")
    metrics = rankings_recall(recall.protocol, {"recall": recall, "recall_subset": subset})
    # ranks 1 and 3 (reference removed); subset ranks 0 and 1
    assert (metrics["R@1"], metrics["R@5"], metrics["R@50"]) == (0.0, 100.0, 100.0)
    assert (metrics["Rsubset@1"], metrics["Rsubset@2"], metrics["avg"]) == (50.0, 100.0, 75.0)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"7": ["c1", "c2", "c3", "c4"]}, "query '9' of cirr-split/val has no ranking"),
        ({"7": ["c1", "c2", "c3", "c4"], "9": ["c0", "c2", "c3", "c1"], "11": ["c0"]}, "query '11' is not a query"),
        ({"7": ["c0", "c2", "c3", "c4"], "9": ["c0", "c2", "c3", "c1"]},
         "query '7': lists its reference image 'c0'"),
        ({"7": ["c1", "c2", "c3"], "9": ["c0", "c2", "c3", "c1"]}, "query '7': 3 names, expected 4"),
        ({"7": ["c1", "c1", "c3", "c4"], "9": ["c0", "c2", "c3", "c1"]}, "query '7': repeats an image name"),
        ({"7": ["c1", "c2", "c3", "x9"], "9": ["c0", "c2", "c3", "c1"]}, "query '7': image 'x9' is not among"),
    ],
    ids=["missing", "unknown", "reference", "short", "repeat", "foreign"],
)
@pytest.mark.django_db(transaction=True)
def test_a_bad_ranking_file_fails_the_submission_naming_the_query(researcher, tmp_path, payload, message):
    cirr_split(tmp_path)
    assert message in _refused_on_the_worker(researcher, json_file({"version": "rc2", "metric": "recall", **payload}))
    error = _refused_on_the_worker(researcher, json_file({"version": "rc2", "metric": "top5", "7": []}))
    assert "'metric' must be 'recall' or 'recall_subset'" in error


@override_settings(HPBENCH_MAX_SCORE_FILE_BYTES=10_000)
def test_a_parquet_file_that_unpacks_far_past_the_limit_is_refused_before_it_is_read(researcher, benchmark):
    import io

    import pyarrow.parquet as pq
    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    pq.write_table(pa.table({"question": ["a" * 1_000_000], "image": ["b"], "score": [1.0]}), buffer,
                   compression="zstd", use_dictionary=False)
    assert len(buffer.getvalue()) < 10_000
    response = _post(researcher, SimpleUploadedFile("bomb.parquet", buffer.getvalue()))
    assert response.status_code == 400 and "over 8 times the score-file limit" in response.json()["detail"]
