"""The reaper: run by Celery beat every ``HPBENCH_REAP_SECONDS`` on the ``default`` queue (no torch)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="default.jobs.reap", acks_late=False, ignore_result=True)
def reap() -> dict[str, int]:
    """Requeue or fail the jobs whose worker is lost or that ran past the hard limit (``jobs_reap``)."""
    from worker.claims import jobs_reap

    return jobs_reap()
