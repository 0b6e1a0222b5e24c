"""Without Celery beat, workers reap: a job whose whole worker was SIGKILLed is still taken over (real workers).

The same set-up as ``test_lost_workers.py`` (heartbeats every second, stale after 6), but no beat process and
``HPBENCH_WORKER_REAPS=1``: each worker's main process reaps every second while beat is missing. Without that, the
job would stay ``running`` until Redis redelivers its message (an hour), or for ever on the embedded broker.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpbench.catalog.models import ReaperState
from tests.worker.test_lost_workers import (
    Processes,
    _start_held,
    _wait,
    retrieval_job,
    test_database_url,
    tiny_clip,
)

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["retrieval_job", "tiny_clip"]  # fixtures this module uses


@pytest.fixture
def processes(django_db_setup, django_db_blocker) -> Iterator[Processes]:
    """Workers only (no beat), on a Redis key prefix of their own; stopped after the test."""
    folder = Path(os.environ["HPBENCH_VAR_DIR"]) / "without-beat"
    folder.mkdir(exist_ok=True)
    procs = Processes(test_database_url(django_db_blocker), folder, prefix=f"hpbench-nobeat-{uuid.uuid4().hex[:8]}:",
                      env={"HPBENCH_WORKER_REAPS": "1"})
    try:
        yield procs
    finally:
        procs.stop(procs.started)


def test_without_beat_a_job_whose_whole_worker_died_is_taken_over_by_the_workers_reaping(processes, retrieval_job):
    ReaperState.objects.all().delete()  # a record an earlier module's beat may have left after its last flush
    worker, row, lock, first = _start_held(processes, retrieval_job)
    try:
        killed = time.monotonic()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        lock.release()
        processes.worker(queues="gpu", pool=["-P", "prefork", "-c", "1"])  # the supervisor starts it again
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        print(f"\nRetrievalRun x whole worker SIGKILL without beat: {row.status} "
              f"{time.monotonic() - killed:.1f} s after the kill, restarts {row.restarts}")
        assert row.status == "finished", row.error
        assert row.restarts == 1 and row.claimed_by != first
        state = ReaperState.objects.get(pk=1)
        assert state.ran_at is not None and state.beat_ran_at is None  # workers reaped, beat never did
    finally:
        lock.release()
