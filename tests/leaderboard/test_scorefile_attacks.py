"""Score files that attack the server: each costs the web process a bounded read only, counts against the quota
before a row is read, and is refused by the worker's check (a child process under a memory limit) with a
message naming the file and line."""

from __future__ import annotations

import io
import json
import time
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench.leaderboard.models import ScoreFile, Submission
from tests.leaderboard.scorefile_fixtures import jsonl_file, relevance_rows, tiny_benchmark

VALUES = {"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.2, "e": 0.4, "f": 0.1}
MIB = 1024**2


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture(autouse=True)
def _checks_run_here(monkeypatch):
    """The check runs in this test (``_worker_error``), with this test's settings: the message that would hand it
    to the test run's session worker (tests/conftest.py) is not sent, so that worker cannot take it first."""
    from hpbench import dispatch

    send = dispatch.task_send_on_commit
    monkeypatch.setattr(dispatch, "task_send_on_commit",
                        lambda name, *args: None if name == dispatch.SCOREFILE_CHECK else send(name, *args))


def _post(user, *files):
    return _client(user).post("/api/leaderboard/submissions", {"scores": list(files)}, format="multipart")


def _post_measured(user, upload) -> tuple[object, int, float]:
    """The answer, the Python heap's peak while the web process handled it, and its CPU seconds."""
    tracemalloc.start()
    started = time.process_time()
    try:
        response = _post(user, upload)
        return response, tracemalloc.get_traced_memory()[1], time.process_time() - started
    finally:
        tracemalloc.stop()


def _worker_error(user, pk: int) -> str:
    from worker.scorefiles import score_files_check_execute

    assert score_files_check_execute(submission_id=pk) == "failed"
    body = _client(user).get(f"/api/leaderboard/submissions/{pk}").json()
    assert body["status"] == "failed" and not ScoreFile.objects.filter(benchmark__isnull=False).exists()
    return body["log"].splitlines()[0]


def parquet_bomb(rows: int, value_bytes: int = MIB) -> bytes:
    """A Parquet file of a few KiB whose question column is one long dictionary value repeated ``rows`` times:
    decoded, ``rows * value_bytes`` bytes."""
    table = pa.table({"question": pa.array(["q" * value_bytes] * rows).dictionary_encode(), "image": ["a"] * rows,
                      "score": [0.5] * rows})
    buffer = io.BytesIO()
    # No Arrow schema stored: readers see a plain string column (Parquet's dictionary encoding underneath).
    pq.write_table(table, buffer, compression="zstd", use_dictionary=True, store_schema=False)
    return buffer.getvalue()


@pytest.fixture
def benchmark(fiq_dataset):
    return tiny_benchmark(fiq_dataset)


@pytest.mark.django_db(transaction=True)
def test_a_parquet_bomb_costs_the_web_process_its_metadata_only_and_the_worker_refuses_it(researcher, benchmark):
    payload = parquet_bomb(300)  # 300 MiB decoded
    assert len(payload) < 8 * 1024
    response, peak, _ = _post_measured(researcher, SimpleUploadedFile("bomb.parquet", payload))
    assert response.status_code == 201, response.content
    assert peak < 20 * MIB, peak  # the old code built 300 MiB of Python strings here
    error = _worker_error(researcher, response.json()["id"])
    assert "file 'bomb.parquet'" in error and "a question longer than 1024 characters" in error


@pytest.mark.django_db(transaction=True)
def test_blank_lines_and_one_huge_line_are_refused_by_the_worker_at_their_bound(researcher, benchmark):
    blank = SimpleUploadedFile("blank.jsonl", b"\n" * (4 * MIB))
    response = _post(researcher, blank)
    assert response.status_code == 201, response.content
    assert "file 'blank.jsonl', line 1001: over 1000 blank lines" in _worker_error(researcher, response.json()["id"])
    line = json.dumps({"question": "tiny-v1/0", "image": "b" * (8 * MIB), "score": 1.0}).encode() + b"\n"
    response = _post(researcher, SimpleUploadedFile("line.jsonl", line))
    assert response.status_code == 201, response.content
    assert "file 'line.jsonl', line 1: longer than 65536 bytes" in _worker_error(researcher, response.json()["id"])


@pytest.mark.django_db(transaction=True)
def test_a_json_object_that_needs_more_memory_than_the_limit_fails_the_check_not_the_worker(
    researcher, benchmark, settings
):
    settings.HPBENCH_SCORE_CHECK_MEMORY_BYTES = 512 * MIB
    names = ",".join(f'"n{i:07d}"' for i in range(5_000_000))
    payload = f'{{"version": "rc2", "metric": "recall", "7": [{names}]}}'.encode()  # 55 MiB
    response, peak, _ = _post_measured(researcher, SimpleUploadedFile("big.json", payload))
    # The test client's copies of the body included; parsing it (the old code) took over 7 times its size.
    assert response.status_code == 201 and peak < 3 * len(payload), peak
    error = _worker_error(researcher, response.json()["id"])
    assert "file 'big.json'" in error and ("needs more than 536870912 bytes" in error or "past the limits" in error)


@pytest.mark.django_db
@override_settings(HPBENCH_SUBMISSIONS_PER_DAY=1)
def test_the_quota_is_taken_before_a_row_is_read(researcher, benchmark):
    assert _post(researcher, jsonl_file(relevance_rows(VALUES))).status_code == 201
    refused = _post(researcher, SimpleUploadedFile("blank.jsonl", b"\n" * MIB))
    assert refused.status_code == 429 and "1 of 1" in refused.json()["detail"]
    assert Submission.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_5001_digit_number_in_a_score_file_fails_the_check_with_its_line(researcher, benchmark):
    rows = [json.dumps(r) for r in relevance_rows(VALUES)]
    rows[2] = '{"question": "tiny-v1/0", "image": "d", "score": 1' + "0" * 5000 + "}"
    response = _post(researcher, jsonl_file(rows))
    assert response.status_code == 201, response.content
    error = _worker_error(researcher, response.json()["id"])
    assert "file 'scores.jsonl', line 3: not valid JSON" in error
    ranking = SimpleUploadedFile("r.json", b'{"version": "rc2", "metric": "recall", "7": 1' + b"0" * 5000 + b"}")
    response = _post(researcher, ranking)
    assert response.status_code == 201, response.content
    assert "file 'r.json': not valid JSON" in _worker_error(researcher, response.json()["id"])


@pytest.mark.django_db
def test_a_5001_digit_integer_in_a_submission_config_is_a_400(researcher, client):
    import numpy as np
    from safetensors.numpy import save as save_safetensors

    config = '{"x": 1' + "0" * 5000 + "}"

    def checkpoint():
        return SimpleUploadedFile("m.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))

    response = _client(researcher).post("/api/leaderboard/submissions",
                                        {"family": "clip4cir", "file": checkpoint(), "config": config},
                                        format="multipart")
    assert response.status_code == 400 and "not valid JSON" in json.dumps(response.json())
    client.force_login(researcher)
    page = client.post("/submissions/", {"family": "clip4cir", "file": checkpoint(), "config": config})
    assert page.status_code == 400 and "config: not valid JSON" in page.content.decode()
    assert Submission.objects.count() == 0
