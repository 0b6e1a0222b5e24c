"""An export job run by a real Celery worker, then downloaded."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest
from django.test import Client

from hpbench.exports.models import ExportJob


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_job_and_staff_download_the_file(
    celery_worker_process, export_world, staff_user, tmp_path
):
    client = Client()
    client.force_login(staff_user)
    response = client.post(
        "/api/exports/jobs",
        {"format": "parquet", "campaigns": [export_world.campaign.slug]},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/api/exports/jobs/{job_id}").json()
        if job["status"] in ("finished", "failed"):
            break
        time.sleep(0.3)
    assert job["status"] == "finished", job
    assert job["rows"] == 7 and job["progress"] == 1.0
    download = client.get(job["download_url"])
    assert download.status_code == 200
    path = tmp_path / "got.parquet"
    path.write_bytes(b"".join(download.streaming_content))
    table = pq.read_table(path)
    assert table.column("vote_id").to_pylist() == sorted(
        v.pk
        for v in export_world.votes
        if v.comparison.campaign_id == export_world.campaign.pk and not v.annotator.flagged
    )
    # A duplicate message does nothing: the job is no longer queued.
    from hpbench.celery import app

    assert app.send_task("default.exports.run", args=[job_id]).get(timeout=30) == 0
    assert ExportJob.objects.get(pk=job_id).status == "finished"
