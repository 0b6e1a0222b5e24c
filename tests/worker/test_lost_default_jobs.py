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

import pytest

from annotate.models import Campaign
from hpbench.exports.models import ExportJob
from tests.annotate.conftest import make_campaign, make_world
from tests.exports.conftest import make_export_world
from tests.worker import test_lost_workers as lost
from tests.worker.test_lost_workers import BOUND_S, TableLock, _pid

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
