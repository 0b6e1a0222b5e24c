"""Export tasks: writing a staff export job's file (thin, idempotent)."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="default.exports.run")
def run(job_id: int) -> int:
    """Run a queued export job; returns its row count (0 when nothing was claimed).

    Claims the job (:func:`worker.claims.job_claim`: queued, or running under a lost worker) in one conditional
    UPDATE, so a duplicate message does nothing while the job's worker lives, and keeps its heartbeat while it
    runs (a takeover writes the file again). Progress, the file and any error are written to the job's row.
    """
    from hpbench.exports import services
    from hpbench.exports.models import ExportJob
    from worker import claims

    owner = claims.worker_identity()
    if not claims.job_claim(model=ExportJob, pk=job_id, owner=owner, reset={"progress": 0.0, "error": ""}):
        log.info("export job %s: not queued, nothing to do", job_id)
        return 0
    with claims.heartbeat(model=ExportJob, pk=job_id, owner=owner):
        return services.export_job_run(job_id=job_id, owner=owner).rows
