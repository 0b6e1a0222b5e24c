"""A researcher's CLIP4Cir submission runs on a real worker with the CLIP folder of a registered base model."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench.catalog.models import RetrievalRun
from hpbench.leaderboard.models import Submission
from models_zoo.tiny import make_tiny_clip4cir
from tests.catalog.conftest import build_fashioniq

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for_run(submission_id: int, timeout: float = 120) -> RetrievalRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RetrievalRun.objects.filter(model__submission__pk=submission_id).first()
        if run is not None and run.status in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"no finished retrieval run for submission {submission_id} within {timeout} s")


def test_a_submission_names_a_base_model_and_the_worker_ranks_with_its_clip_folder(
    celery_worker_process, tmp_path, researcher, settings
):
    settings.HPBENCH_SUBMISSION_DATASETS = ["fiq:val"]
    checkpoint = make_tiny_clip4cir(tmp_path / "ckpt")  # clip/ + clip4cir.json + model.safetensors (Combiner)
    root = build_fashioniq(tmp_path / "fiq")
    call_command("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val",
                 "--json", stdout=StringIO())
    call_command("register_base_model", "tiny-clip", "--family", "clip4cir", "--path",
                 f"clip_folder={checkpoint / 'clip'}", stdout=StringIO())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")

    def submit(config: dict):
        upload = SimpleUploadedFile("combiner.safetensors", (checkpoint / "model.safetensors").read_bytes())
        return api.post("/api/leaderboard/submissions",
                        {"family": "clip4cir", "file": upload, "config": json.dumps(config)}, format="multipart")

    refused = submit({"clip_folder": str(checkpoint / "clip")})
    assert refused.status_code == 400 and "config key 'clip_folder'" in refused.json()["detail"]

    accepted = submit({"base_model": "tiny-clip"})
    assert accepted.status_code == 201, accepted.content
    run = _wait_for_run(accepted.json()["id"])
    assert run.status == "finished", run.log
    assert run.metrics["queries"] == 2

    # Without a base model the loader has no CLIP: the researcher reads why, without the server's paths.
    bare = submit({})
    run = _wait_for_run(bare.json()["id"])
    from django.conf import settings as django_settings

    media = str(django_settings.MEDIA_ROOT)
    assert run.status == "failed" and "CheckpointError" in run.error and media in run.error
    shown = api.get(f"/api/leaderboard/submissions/{bare.json()['id']}").json()
    assert "…/combiner" in shown["runs"][0]["error"] and "config['clip_folder']" in shown["runs"][0]["error"]
    assert media not in json.dumps(shown) and str(tmp_path) not in json.dumps(shown)
    assert Submission.objects.count() == 2
