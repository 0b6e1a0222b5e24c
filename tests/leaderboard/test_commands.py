"""The management commands around the leaderboard: submit (a client), score_model, freeze_benchmark."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from safetensors.numpy import save_file

from hpbench.leaderboard.models import ModelScore, Submission


@pytest.mark.django_db(transaction=True)
def test_the_submit_client_uploads_a_checkpoint_with_a_progress_bar(live_server, researcher, tmp_path):
    checkpoint = tmp_path / "weights.safetensors"
    save_file({"w": np.ones((64, 64), dtype=np.float32)}, str(checkpoint))
    token = Token.objects.create(user=researcher).key
    out, err = io.StringIO(), io.StringIO()
    call_command("submit", "--url", live_server.url, "--token", token, "--family", "clip4cir",
                 "--file", str(checkpoint), "--config", '{"pad_ratio": null}', "--description", "cli",
                 stdout=out, stderr=err)
    body = json.loads(out.getvalue())
    assert body["owner"] == "researcher" and body["config"] == {"pad_ratio": None} and body["description"] == "cli"
    assert "uploading weights.safetensors" in err.getvalue() and "100%" in err.getvalue()
    submission = Submission.objects.get(pk=body["id"])
    assert submission.model.checkpoint_file.read() == checkpoint.read_bytes()
    with pytest.raises(CommandError, match=r"server refused the submission \(40[13]\).*Invalid token"):
        call_command("submit", "--url", live_server.url, "--token", "wrong", "--family", "demo",
                     "--file", str(checkpoint), stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
def test_score_model_queues_each_active_benchmark_once(fiq_dataset):
    from hpbench.catalog.models import ModelEntry
    from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
    from tests.leaderboard.conftest import make_images

    ids = list(make_images(fiq_dataset, {"a": "shirt", "b": "shirt", "c": "shirt"}).values())
    pairs = [PairSpec(reference_id=ids[0], text="t", set1=(ids[1],), set2=(ids[2],), preference=1)]
    benchmark_store(name="one", source="imported", dataset=fiq_dataset, pairs=pairs)
    ModelEntry.objects.create(name="m", family="demo")
    out = io.StringIO()
    call_command("score_model", "m", "--json", stdout=out)
    first = json.loads(out.getvalue())
    assert [r["status"] for r in first] == ["queued"]
    out = io.StringIO()
    call_command("score_model", "m", "--json", stdout=out)
    # Already queued: the same row, its message sent again (the first may be lost; a duplicate does nothing).
    assert [r["id"] for r in json.loads(out.getvalue())] == [r["id"] for r in first]
    assert ModelScore.objects.count() == 1
    with pytest.raises(CommandError, match="no such model"):
        call_command("score_model", "nope")


@pytest.mark.django_db(transaction=True)
def test_the_submit_client_uploads_score_files_and_shows_the_servers_error(live_server, researcher, tmp_path,
                                                                          fiq_dataset):
    from tests.leaderboard.scorefile_fixtures import relevance_rows, tiny_benchmark

    tiny_benchmark(fiq_dataset)
    rows = relevance_rows({"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.2, "e": 0.4, "f": 0.1})
    good, bad = tmp_path / "mgur.jsonl", tmp_path / "bad.csv"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))  # rows are checked on a worker; the name at once
    token = Token.objects.create(user=researcher).key
    out, err = io.StringIO(), io.StringIO()
    call_command("submit", "--url", live_server.url, "--token", token, "--scores", str(good), "--description", "MGUR",
                 stdout=out, stderr=err)
    body = json.loads(out.getvalue())
    assert body["family"] == "scores" and body["description"] == "MGUR" and "uploading mgur.jsonl" in err.getvalue()
    assert Submission.objects.get(pk=body["id"]).model.score_files.get().file.read() == good.read_bytes()
    with pytest.raises(CommandError, match=r"\(400\).*file 'bad.csv': expected .jsonl or .parquet"):
        call_command("submit", "--url", live_server.url, "--token", token, "--scores", str(bad),
                     stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="either --file"):
        call_command("submit", "--url", live_server.url, "--token", token, stdout=io.StringIO())


def test_the_submit_client_sends_a_demo_checkpoint_folder_as_one_tar_with_its_name(live_server, researcher, settings):
    from pathlib import Path

    settings.HPBENCH_SUBMISSION_DATASETS = []
    folder = Path(__file__).resolve().parents[2] / "models_zoo" / "demo" / "checkpoints" / "demo-qure"
    token = Token.objects.create(user=researcher).key
    out = io.StringIO()
    call_command("submit", "--url", live_server.url, "--token", token, "--family", "demo", "--file", str(folder),
                 "--name", "qure-demo-mine", "--licence", "MIT", stdout=out, stderr=io.StringIO())
    body = json.loads(out.getvalue())
    assert body["model"] == "qure-demo-mine" and body["licence"] == "MIT"
    model = Submission.objects.get(pk=body["id"]).model
    assert model.checkpoint_file.read() == (folder / "model.safetensors").read_bytes()
