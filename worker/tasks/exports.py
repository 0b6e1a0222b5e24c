"""Export tasks: writing a staff export job's file (thin, idempotent)."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="default.exports.run")
def run(job_id: int) -> int:
    """Run a queued export job; returns its row count (0 when nothing was claimed).

    Claims the job by moving it from queued to running in one conditional UPDATE, so a redelivered or
    duplicate message does nothing. Progress, the file and any error are written to the job's row.
    """
    from hpbench.exports import services

    if not services.export_job_claim(job_id=job_id):
        log.info("export job %s: not queued, nothing to do", job_id)
        return 0
    return services.export_job_run(job_id=job_id).rows
