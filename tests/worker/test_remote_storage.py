"""A worker on another machine: its own HPBENCH_MEDIA_ROOT and cache, sharing only the S3 bucket (moto's server)
with the web side, runs a researcher's uploaded checkpoint; the web side reads what it stored."""

from __future__ import annotations

import json
import time
import uuid
from io import StringIO
from pathlib import Path
from unittest import mock

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench import media
from hpbench.catalog.models import Image, RetrievalRun
from hpbench.catalog.selectors import run_topk
from models_zoo.tiny import make_tiny_clip4cir
from tests.catalog.conftest import build_fashioniq
from tests.conftest import worker_process

pytestmark = pytest.mark.django_db(transaction=True)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _wait_for_run(submission_id: int, timeout: float = 180) -> RetrievalRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RetrievalRun.objects.filter(model__submission__pk=submission_id).first()
        if run is not None and run.status in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"no finished retrieval run for submission {submission_id} within {timeout} s")


def test_a_worker_with_its_own_media_folder_runs_an_uploaded_checkpoint_through_the_bucket(
    s3_media, django_db_blocker, tmp_path, researcher, settings
):
    web_media = tmp_path / "web-media"
    worker_media, worker_cache = tmp_path / "worker-media", tmp_path / "worker-cache"
    settings.MEDIA_ROOT = str(web_media)
    settings.HPBENCH_SUBMISSION_DATASETS = ["fiq:val"]
    # Dataset images and the staff-registered base model are server paths: the shared read-only mount
    # (here the same folder on the one test machine).
    checkpoint = make_tiny_clip4cir(tmp_path / "ckpt")
    root = build_fashioniq(tmp_path / "fiq")
    call_command("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val",
                 "--json", stdout=StringIO())
    call_command("register_base_model", "tiny-clip", "--family", "clip4cir", "--path",
                 f"clip_folder={checkpoint / 'clip'}", stdout=StringIO())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")

    # The suite's shared worker (celery_worker_process) consumes the usual queues with the suite's media
    # folder: this test's tasks go to a queue only the other machine's worker reads.
    from hpbench.celery import app

    queue = f"remote-{uuid.uuid4().hex[:8]}"
    send = app.send_task
    env = {**s3_media, "HPBENCH_MEDIA_ROOT": str(worker_media), "HPBENCH_WORKER_CACHE": str(worker_cache)}
    with (
        worker_process(django_db_blocker, env=env, name="remote-worker", queues=queue),
        mock.patch.object(app, "send_task", lambda name, **kw: send(name, queue=queue, **kw)),
    ):
        def submit() -> int:
            upload = SimpleUploadedFile("combiner.safetensors", (checkpoint / "model.safetensors").read_bytes())
            response = api.post("/api/leaderboard/submissions", {
                "family": "clip4cir", "file": upload, "config": json.dumps({"base_model": "tiny-clip"}),
            }, format="multipart")
            assert response.status_code == 201, response.content
            return response.json()["id"]

        first = submit()
        run = _wait_for_run(first)
        assert run.status == "finished", run.log
        assert run.metrics["queries"] == 2

        # A dataset image the worker cannot read fails the next model's run with the path and what to do.
        Path(Image.objects.get(name="Dva1").dataset.image_root, Image.objects.get(name="Dva1").file_path).unlink()
        broken = _wait_for_run(submit())
        assert broken.status == "failed"
        assert "Dva1" in broken.error and "not found on worker host" in broken.error
        assert "mount the image root" in broken.error

    # The web side reads the run's results from the bucket, by storage name.
    assert run.results_path == f"runs/run-{run.pk}.npz"
    topk = run_topk(run)
    queries = run.dataset.queries.filter(split="val").values_list("pk", flat=True)
    assert sorted(topk.query_ids.tolist()) == sorted(queries)
    shown = api.get(f"/api/leaderboard/submissions/{first}").json()
    assert shown["runs"][0]["status"] == "finished"

    # Everything went through the bucket: the upload, the embeddings and the results; neither machine's media
    # folder holds a file, and the worker read the checkpoint from its own cache.
    client = boto3.client("s3", endpoint_url=s3_media["AWS_S3_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_media["AWS_STORAGE_BUCKET_NAME"])["Contents"]]
    upload_key = run.model.checkpoint_file.name
    assert upload_key in keys and upload_key.endswith(f"/{run.model.name}/combiner.safetensors")
    assert f"runs/run-{run.pk}.npz" in keys
    assert any(k.startswith(f"embeddings/model-{run.model.pk}-") and k.endswith("/images.npz") for k in keys)
    assert _files(web_media) == [] and _files(worker_media) == []
    cached = [p for p in _files(worker_cache) if p.parent.name == run.model.name]
    assert len(cached) == 1 and cached[0].read_bytes() == media.read_bytes(upload_key)
