"""Files of failed and cancelled submissions are deleted after the retention period; the rows stay and count."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from safetensors.numpy import save as save_safetensors

from hpbench.leaderboard.models import Submission
from hpbench.leaderboard.services.submissions import submission_create, submissions_counted_today

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def _submission(owner, *, status: str, ended_days_ago: float) -> Submission:
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((8,), dtype=np.float32)}))
    submission = submission_create(owner=owner, family="clip4cir", file=upload)
    Submission.objects.filter(pk=submission.pk).update(
        status=status, finished_at=timezone.now() - timedelta(days=ended_days_ago)
    )
    submission.refresh_from_db()
    return submission


def test_purge_deletes_old_failed_and_cancelled_files_and_their_embeddings_only(researcher, media, settings):
    settings.HPBENCH_SUBMISSIONS_PER_DAY = 10
    old_failed = _submission(researcher, status="failed", ended_days_ago=8)
    old_cancelled = _submission(researcher, status="cancelled", ended_days_ago=30)
    recent_failed = _submission(researcher, status="failed", ended_days_ago=1)
    old_finished = _submission(researcher, status="finished", ended_days_ago=60)
    cache = media / "embeddings" / f"model-{old_failed.model_id}-abc" / "dataset-1"
    cache.mkdir(parents=True)
    (cache / "images.npy").write_bytes(b"x" * 100)
    paths = {s.pk: Path(s.model.checkpoint_file.path) for s in (old_failed, old_cancelled, recent_failed, old_finished)}
    assert all(p.exists() for p in paths.values())

    dry = io.StringIO()
    call_command("purge_submission_files", "--dry-run", stdout=dry)
    assert "would delete 3 file(s)" in dry.getvalue() and all(p.exists() for p in paths.values())

    out = io.StringIO()
    call_command("purge_submission_files", stdout=out)
    assert f"of 2 submission(s): {old_failed.pk}, {old_cancelled.pk}" in out.getvalue()
    assert not paths[old_failed.pk].exists() and not paths[old_cancelled.pk].exists()
    assert not paths[old_failed.pk].parent.exists()  # the submission's own folder goes with its file
    assert not cache.parent.exists()
    assert paths[recent_failed.pk].exists() and paths[old_finished.pk].exists()
    old_failed.refresh_from_db()
    assert not old_failed.model.checkpoint_file and "files deleted after the retention period" in old_failed.log
    # The rows stay and still count against the quota; a second run has nothing to do.
    assert submissions_counted_today(owner=researcher) == 4
    again = io.StringIO()
    call_command("purge_submission_files", stdout=again)
    assert "deleted 0 file(s), 0 bytes, of 0 submission(s)" in again.getvalue()


def test_the_retention_period_comes_from_the_setting_or_the_command_line(researcher, settings):
    settings.HPBENCH_FAILED_SUBMISSION_RETENTION_DAYS = 0
    submission = _submission(researcher, status="failed", ended_days_ago=0.01)
    out = io.StringIO()
    call_command("purge_submission_files", "--days", "1", stdout=out)
    assert "of 0 submission(s)" in out.getvalue()
    call_command("purge_submission_files", stdout=out)
    submission.refresh_from_db()
    assert not submission.model.checkpoint_file


def test_the_purge_runs_as_a_periodic_task_on_celery_beat(researcher, settings):
    import worker.tasks.submission_files as tasks
    from hpbench.celery import app

    entry = app.conf.beat_schedule["purge-submission-files"]
    assert entry["task"] == tasks.PURGE_TASK == "default.submissions.purge_files"
    assert entry["schedule"] == float(settings.HPBENCH_PURGE_INTERVAL_SECONDS)
    submission = _submission(researcher, status="cancelled", ended_days_ago=9)
    size = submission.model.checkpoint_file.size
    assert tasks.purge_files() == {"submissions": [submission.pk], "files": 1, "bytes": size}
