"""An export attempt that fails (or whose worker was killed mid-write) leaves no partial file behind."""

from __future__ import annotations

import pytest

from hpbench.exports import services
from hpbench.exports.models import ExportJob
from worker import claims

pytestmark = pytest.mark.django_db


def _job(staff_user, export_world, **fields) -> ExportJob:
    return ExportJob.objects.create(requested_by=staff_user, format="jsonl",
                                    params={"campaigns": [export_world.campaign.slug]}, **fields)


def test_a_failed_attempt_removes_its_partial_file_and_those_of_ended_jobs(staff_user, export_world, tmp_path,
                                                                           settings, monkeypatch):
    settings.VAR_DIR = tmp_path
    folder = services.exports_dir()
    folder.mkdir(parents=True)
    killed = _job(staff_user, export_world, status=ExportJob.Status.FAILED, error="its worker was lost 3 times")
    running = _job(staff_user, export_world, status=ExportJob.Status.RUNNING, claimed_by="elsewhere:1:t")
    (folder / f"job-{killed.pk}-{killed.token[:12]}.jsonl").write_text('{"half a row')  # killed mid-write
    (folder / f"job-{killed.pk}-{killed.token[:12]}").mkdir()  # an hf folder not yet zipped
    live = folder / f"job-{running.pk}-{running.token[:12]}.jsonl"
    live.write_text("{}\n")
    job = _job(staff_user, export_world)
    assert claims.job_claim(model=ExportJob, pk=job.pk, owner="test-worker")

    def write_half_then_fail(*, out, **_):
        out.write_text('{"vote": 1}\n{"vo')
        raise OSError("No space left on device")

    monkeypatch.setattr(services, "export_write", write_half_then_fail)
    with pytest.raises(OSError):
        services.export_job_run(job_id=job.pk, owner="test-worker")
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED and "No space left" in job.error
    assert sorted(folder.iterdir()) == [live]  # the running job's file is its own business


def test_an_export_error_removes_the_partial_file_too(staff_user, export_world, tmp_path, settings, monkeypatch):
    settings.VAR_DIR = tmp_path
    job = _job(staff_user, export_world)
    assert claims.job_claim(model=ExportJob, pk=job.pk, owner="test-worker")

    def write_half_then_refuse(*, out, **_):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text('{"vo')
        raise services.ExportError("a column cannot be written")

    monkeypatch.setattr(services, "export_write", write_half_then_refuse)
    job = services.export_job_run(job_id=job.pk, owner="test-worker")
    assert job.status == ExportJob.Status.FAILED
    assert list(services.exports_dir().iterdir()) == []
