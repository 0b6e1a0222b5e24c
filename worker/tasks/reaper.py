"""The reaper: run by Celery beat every ``HPBENCH_REAP_SECONDS`` on the ``default`` queue (no torch), and by every
worker while beat is missing.

Without beat a job whose worker died would stay ``running`` until the broker redelivers its message (an hour on
Redis, never on the embedded filesystem broker). So each worker's main process (``HPBENCH_WORKER_REAPS``, on by
default) keeps a thread that reaps at start-up and then every ``HPBENCH_REAP_SECONDS`` whenever beat has not run
the reaper for three periods. Several reapers at once are safe: every change is a conditional UPDATE.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

log = logging.getLogger(__name__)
_stop = threading.Event()


@shared_task(name="default.jobs.reap", acks_late=False, ignore_result=True)
def reap() -> dict[str, int]:
    """Requeue or fail the jobs whose worker is lost or that ran past the hard limit, and send again jobs queued
    too long (``jobs_reap``); recorded as beat's run."""
    from worker.claims import jobs_reap

    return jobs_reap(by_beat=True)


def beat_is_missing() -> bool:
    """Whether Celery beat has not run the reaper for three periods (or ever), and no reaper ran this period."""
    from django.utils import timezone

    from hpbench.catalog.models import ReaperState

    period = timedelta(seconds=settings.HPBENCH_REAP_SECONDS)
    now = timezone.now()
    state = ReaperState.objects.filter(pk=1).first() or ReaperState()
    beat_ran, ran = state.beat_ran_at, state.ran_at
    return (beat_ran is None or beat_ran < now - 3 * period) and (ran is None or ran < now - 0.9 * period)


def _reap_while_beat_is_missing() -> None:
    from django.db import close_old_connections, connection

    from worker.claims import jobs_reap

    try:
        while True:
            try:
                close_old_connections()
                if beat_is_missing():
                    counts = jobs_reap()
                    if any(counts.values()):
                        log.warning("beat is missing: this worker reaped %s", counts)
            except Exception:  # the database may be down: the next period tries again
                log.exception("reaping in the worker failed")
                connection.close()
            if _stop.wait(settings.HPBENCH_REAP_SECONDS):
                return
    finally:
        connection.close()


@worker_ready.connect
def _start_reaping(**_: object) -> None:
    if settings.HPBENCH_WORKER_REAPS:
        _stop.clear()
        threading.Thread(target=_reap_while_beat_is_missing, name="reaper", daemon=True).start()


@worker_shutdown.connect
def _stop_reaping(**_: object) -> None:
    _stop.set()
