"""A researcher's CLIP4Cir submission runs on a real worker with the CLIP folder of a registered base model."""

from __future__ import annotations

import json
import time
from io import StringIO

import numpy as np
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


def test_a_qure_upload_without_vit_weights_is_completed_by_a_second_file_of_the_same_submission(
    celery_worker_process, tmp_path, researcher, settings
):
    """Issue 21 item 10: the loader's ``vit_checkpoint`` cannot be given as a path through the platform, so the ViT
    file travels with the checkpoint (field ``vit_checkpoint``) and is stored beside it as ``clip_vit_L.pth``."""
    from hpbench import media
    from hpbench.catalog.results import read_topk_stored
    from models_zoo.blip2_cir.synthetic import make_tiny_qure_clip_l

    settings.HPBENCH_SUBMISSION_DATASETS = ["fiq:val"]
    checkpoint = make_tiny_qure_clip_l(tmp_path / "qure", with_vit=False)  # model.pth, clip_vit_L.pth, vocab.txt
    vit = checkpoint.parent / "clip_vit_L.pth"
    tokenizer = tmp_path / "bert"
    tokenizer.mkdir()
    (tokenizer / "vocab.txt").write_bytes((checkpoint.parent / "vocab.txt").read_bytes())
    root = build_fashioniq(tmp_path / "fiq")
    call_command("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val",
                 "--json", stdout=StringIO())
    call_command("register_base_model", "bert-vocab", "--family", "blip2_cir", "--path",
                 f"tokenizer_folder={tokenizer}", stdout=StringIO())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")

    def submit(family="blip2_cir", **extra):
        form = {"family": family, "file": SimpleUploadedFile("model.pth", checkpoint.read_bytes()),
                "config": json.dumps({"base_model": "bert-vocab"} if family == "blip2_cir" else {}), **extra}
        return api.post("/api/leaderboard/submissions", form, format="multipart")

    refused = submit("clip4cir", vit_checkpoint=SimpleUploadedFile("my_vit.pth", vit.read_bytes()))
    assert refused.status_code == 400 and "vit_checkpoint: only blip2_cir" in refused.json()["detail"]
    not_a_checkpoint = submit(vit_checkpoint=SimpleUploadedFile("my_vit.txt", b"hello"))
    assert not_a_checkpoint.status_code == 400 and "'my_vit.txt'" in not_a_checkpoint.json()["detail"]

    alone = submit()
    assert alone.status_code == 201, alone.content
    failed = _wait_for_run(alone.json()["id"], timeout=180)
    assert failed.status == "failed" and "holds no ViT weights" in failed.error and "vit_checkpoint" in failed.error

    completed = submit(vit_checkpoint=SimpleUploadedFile("my_vit.pth", vit.read_bytes()))
    assert completed.status_code == 201, completed.content
    run = _wait_for_run(completed.json()["id"], timeout=180)
    assert run.status == "finished", run.log
    stored = Submission.objects.get(pk=completed.json()["id"]).model.checkpoint_file.name
    folder = stored.rsplit("/", 1)[0]
    assert media.read_bytes(f"{folder}/clip_vit_L.pth") == vit.read_bytes()

    # The same ranking as the files side by side, registered from the server's disk.
    call_command("register_model", "qure-local", "--family", "blip2_cir", "--variant", "qure", "--checkpoint",
                 str(checkpoint), stdout=StringIO())
    out = StringIO()
    call_command("run_retrieval", "qure-local", "fiq", "--split", "val", "--topk", str(run.topk), "--wait",
                 "--timeout", "180", "--json", stdout=out)
    local = RetrievalRun.objects.get(pk=json.loads(out.getvalue())["run"])
    ours, theirs = read_topk_stored(run.results_path), read_topk_stored(local.results_path)
    assert run.metrics == local.metrics
    assert ours.image_ids.tolist() == theirs.image_ids.tolist()
    np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-6)  # padding (NaN) where the gallery ends
