"""Periodic deletion of failed and cancelled submissions' files (``hpbench/leaderboard/retention.py``).

Registered on Celery beat here, in its own module, every ``HPBENCH_PURGE_INTERVAL_SECONDS`` (an hour).
"""

from celery import shared_task
from django.conf import settings

from hpbench.celery import app

PURGE_TASK = "default.submissions.purge_files"


@shared_task(name=PURGE_TASK)
def purge_files() -> dict:
    """Delete the files past the retention period; returns what went (idempotent: a second run deletes nothing)."""
    from hpbench.leaderboard.retention import submission_files_purge

    report = submission_files_purge()
    return {"submissions": report.submissions, "files": report.files, "bytes": report.bytes}


app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "purge-submission-files": {"task": PURGE_TASK, "schedule": float(settings.HPBENCH_PURGE_INTERVAL_SECONDS)},
}
