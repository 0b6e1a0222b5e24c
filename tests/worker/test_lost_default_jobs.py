"""Campaign builds and exports never hang when their worker dies: real workers SIGKILLed mid-job.

The same set-up as ``test_lost_workers.py`` (whose fixtures these tests share): the job is held mid-run by an
exclusive lock on a table it reads after its claim (``annotate_campaign_models`` for a build, ``annotate_vote``
for an export) while its heartbeat thread runs. The job is sent to a queue of its own, served by a prefork
worker with one child; the module's solo ``default`` worker runs the reaper (and any job the reaper queues again).
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Campaign
from hpbench.exports.models import ExportJob
from tests.annotate.conftest import make_campaign, make_world
from tests.exports.conftest import make_export_world
from tests.worker import test_lost_workers as lost
from tests.worker.test_lost_workers import BOUND_S, TableLock, _pid
from worker import claims

processes = lost.processes  # the module's beat and reaper worker
_gpu_workers_last_one_test = lost._gpu_workers_last_one_test  # the workers a test starts are gone after it

pytestmark = pytest.mark.django_db(transaction=True)
QUEUE = "lost-default-jobs"
ENDED = ("built", "finished", "failed")


@pytest.fixture(params=["campaign build", "export"])
def job(request, django_user_model):
    """(a queued row, its task, the table it reads after its claim, its status field, its finished status)."""
    if request.param == "campaign build":
        campaign = make_campaign(make_world(n_queries=4), build=False, status=Campaign.Status.DRAFT)
        Campaign.objects.filter(pk=campaign.pk).update(build_status=Campaign.BuildStatus.QUEUED)
        return campaign, "default.campaigns.build", "annotate_campaign_models", "build_status", "built"
    world = make_export_world(django_user_model)
    row = ExportJob.objects.create(format="jsonl", params={"campaigns": [world.campaign.slug]})
    return row, "default.exports.run", "annotate_vote", "status", "finished"


def _wait(row, field: str, predicate, *, what: str, seconds: float = BOUND_S):
    deadline = time.monotonic() + seconds
    while True:
        row.refresh_from_db()
        if predicate(row):
            return row
        assert time.monotonic() < deadline, f"{what}: still {getattr(row, field)} ({row.claimed_by}) after {seconds} s"
        time.sleep(0.2)


def _start_held(processes, job):
    row, task, table, field, _ = job
    worker, _ = processes.worker(queues=QUEUE, pool=["-P", "prefork", "-c", "1"])
    lock = TableLock(table)
    processes.app.send_task(task, args=[row.pk], queue=QUEUE)
    _wait(row, field, lambda r: getattr(r, field) == "running" and r.claimed_by, what="claim", seconds=60)
    return worker, lock, row.claimed_by


def test_a_default_job_whose_pool_child_is_sigkilled_is_taken_over_and_finishes(processes, job):
    row, _, _, field, done = job
    worker, lock, first = _start_held(processes, job)
    try:
        killed = time.monotonic()
        os.kill(_pid(first), signal.SIGKILL)
        _wait(row, field, lambda r: r.claimed_by and r.claimed_by != first, what="take-over")
        lock.release()
        row = _wait(row, field, lambda r: getattr(r, field) in ENDED, what="end")
        print(f"\n{type(row).__name__} x pool child SIGKILL: {getattr(row, field)} "
              f"{time.monotonic() - killed:.1f} s after the kill, restarts {row.restarts}")
        assert getattr(row, field) == done and row.restarts == 1 and worker.poll() is None
    finally:
        lock.release()


def test_a_default_job_whose_whole_worker_is_sigkilled_is_queued_again_by_the_reaper(processes, job):
    row, _, _, field, done = job
    worker, lock, first = _start_held(processes, job)
    try:
        killed = time.monotonic()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        # The reaper queues it again (restarts 1, no owner) and sends its message to ``default``: the module's solo
        # worker may claim it at once (and wait for the lock) before this sees "queued".
        _wait(row, field, lambda r: r.restarts == 1 and r.claimed_by != first, what="requeue")
        requeued = time.monotonic() - killed
        lock.release()
        row = _wait(row, field, lambda r: getattr(r, field) in ENDED, what="end")
        print(f"\n{type(row).__name__} x whole worker SIGKILL: {getattr(row, field)}, requeued after {requeued:.1f} s, "
              f"ended {time.monotonic() - killed:.1f} s after the kill, restarts {row.restarts}")
        assert getattr(row, field) == done and row.claimed_by not in ("", first)
    finally:
        lock.release()


class DatabaseOutage:
    """The test database refuses connections and every connection to it is dropped, except the ones ``keep``
    names (the table lock, this test's own, and queries waiting on the lock: the job's work in flight)."""

    def __init__(self) -> None:
        import psycopg2
        from django.db import connection

        s = connection.settings_dict
        self.name = s["NAME"]
        self.admin = psycopg2.connect(dbname="postgres", user=s["USER"] or "postgres", host=s["HOST"] or "127.0.0.1",
                                      port=s["PORT"] or 5432)
        self.admin.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.own = cursor.fetchone()[0]

    def begin(self, keep: list[int]) -> int:
        cursor = self.admin.cursor()
        cursor.execute(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false')
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s "
                       "AND wait_event_type IS DISTINCT FROM 'Lock' AND NOT pid = ANY(%s)",
                       [self.name, [self.own, *keep]])
        return cursor.fetchone()[0]  # often none: workers connect per heartbeat and per task

    def end(self) -> None:
        self.admin.cursor().execute(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true')

    def close(self) -> None:
        self.end()
        self.admin.close()


def test_database_outages_longer_than_the_heartbeat_timeout_do_not_count_as_lost_workers(processes, job, settings):
    """Three outages of 8 s (the heartbeat timeout is 6 s) while the job waits: its worker lives throughout, so
    the job is neither queued again nor failed, and finishes once it may."""
    for name, value in lost.FAST.items():  # this process reaps too: with the workers' settings
        setattr(settings, name, int(value))
    row, _, _, field, done = job
    worker, lock, first = _start_held(processes, job)
    outage = DatabaseOutage()
    try:
        lock_pid = lock.conn.get_backend_pid()
        for _ in range(3):
            outage.begin(keep=[lock_pid])
            time.sleep(8)
            row.refresh_from_db()  # this test's own connection was kept
            outage.end()
            assert timezone.now() - row.heartbeat_at > timedelta(seconds=7)  # no heartbeat got through
            # The worst order: a reaper runs before the job's heartbeat thread is back.
            assert claims.jobs_reap()["requeued"] == 0
            time.sleep(4)
            row.refresh_from_db()
            assert (row.restarts, row.claimed_by, getattr(row, field)) == (0, first, "running"), row.heartbeat_at
        lock.release()
        row = _wait(row, field, lambda r: getattr(r, field) in ENDED, what="end")
        print(f"\n{type(row).__name__} x 3 database outages of 8 s: {getattr(row, field)}, restarts {row.restarts}")
        assert (getattr(row, field), row.restarts, row.claimed_by) == (done, 0, first)
        assert worker.poll() is None
    finally:
        outage.close()
        lock.release()
