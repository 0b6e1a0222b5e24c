"""Jobs never hang when their worker dies: real Celery workers SIGKILLed mid-job (PostgreSQL, Redis).

A job is held mid-run by an exclusive lock on a table it reads (``catalog_query`` for a retrieval run,
``leaderboard_benchmarkpair`` for a score): the worker has claimed it and its heartbeat thread runs while the
job waits. Then either the pool child running it or the whole worker (main process and children) is
SIGKILLed, and the test asserts how the job ends. Beat and a ``default``-queue worker run the reaper every
second; heartbeats are every second and go stale after 6. These workers use their own Redis key prefix, so the
session's shared worker never takes their messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg2
import pytest
from celery import Celery
from django.core.management import call_command
from PIL import Image as PILImage

from hpbench.catalog.models import Dataset, Image, ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from models_zoo.tiny import make_tiny_clip
from tests.catalog.conftest import build_fashioniq

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"hpbench-lost-{uuid.uuid4().hex[:8]}:"
FAST = {"HPBENCH_HEARTBEAT_SECONDS": "1", "HPBENCH_HEARTBEAT_TIMEOUT": "6", "HPBENCH_REAP_SECONDS": "1",
        "HPBENCH_REQUEUE_QUEUED_SECONDS": "30"}  # after the slowest worker start
BOUND_S = 120  # how long a job may take to end once its worker is killed (far more than it needs)


class Processes:
    """Starts worker and beat processes on the test database, each in its own process group."""

    def __init__(self, database_url: str, folder: Path, *, prefix: str = PREFIX, env: dict | None = None) -> None:
        self.env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1",
                    "CELERY_BROKER_KEY_PREFIX": prefix, **FAST, **(env or {})}
        self.folder = folder
        self.started: list[subprocess.Popen] = []
        # Not the current app: shared tasks (run_retrieval.delay ...) of later tests must keep the suite's prefix.
        self.app = Celery("lost-workers-test", broker=os.environ["CELERY_BROKER_URL"], set_as_current=False)
        self.app.conf.broker_transport_options = {"global_keyprefix": prefix}

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "hpbench.celery", *args], cwd=ROOT,
                                   env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process)
        return process

    def worker(self, *, queues: str, pool: list[str]) -> tuple[subprocess.Popen, str]:
        node = f"lost-{uuid.uuid4().hex[:6]}@localhost"
        process = self._spawn(["worker", "-Q", queues, *pool, "-n", node, "--without-gossip", "--without-mingle",
                               "-l", "INFO"], node)
        deadline = time.monotonic() + 90
        while not self.app.control.ping(destination=[node], timeout=0.5):
            assert process.poll() is None, (self.folder / f"{node}.log").read_text()
            assert time.monotonic() < deadline, f"worker {node} did not answer within 90 s"
        return process, node

    def beat(self) -> subprocess.Popen:
        return self._spawn(["beat", "-s", str(self.folder / "beat-schedule"), "-l", "INFO"], "beat")

    def stop(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def test_database_url(django_db_blocker) -> str:
    from django.db import connection

    with django_db_blocker.unblock():
        s = connection.settings_dict
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def processes(django_db_setup, django_db_blocker) -> Iterator[Processes]:
    """Beat and a solo worker on the ``default`` queue (the reaper) for the module; gpu workers per test."""
    folder = Path(os.environ["HPBENCH_VAR_DIR"]) / "lost-workers"  # the logs outlive the test
    folder.mkdir(exist_ok=True)
    procs = Processes(test_database_url(django_db_blocker), folder)
    try:
        procs.worker(queues="default", pool=["-P", "solo"])
        procs.beat()
        yield procs
    finally:
        procs.stop(procs.started)


@pytest.fixture(autouse=True)
def _gpu_workers_last_one_test(processes) -> Iterator[None]:
    """The gpu workers a test starts are gone before the next test (or they would take its job)."""
    before = len(processes.started)
    yield
    processes.stop(processes.started[before:])
    del processes.started[before:]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


class TableLock:
    """An ACCESS EXCLUSIVE lock on one table, from a connection of its own, until ``release``."""

    def __init__(self, table: str) -> None:
        from django.db import connection

        s = connection.settings_dict
        self.conn = psycopg2.connect(dbname=s["NAME"], user=s["USER"] or "postgres", host=s["HOST"] or "127.0.0.1",
                                     port=s["PORT"] or 5432)
        self.conn.cursor().execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def _wait(row, predicate, *, what: str, seconds: float = BOUND_S):
    deadline = time.monotonic() + seconds
    while True:
        row.refresh_from_db()
        if predicate(row):
            return row
        assert time.monotonic() < deadline, f"{what}: still {row.status} ({row.claimed_by}) after {seconds} s"
        time.sleep(0.2)


def _pid(owner: str) -> int:
    return int(owner.split(":")[1])


@pytest.fixture
def retrieval_job(tmp_path, tiny_clip):
    """(row class, make a queued row, task name, table the job reads after its claim)."""
    call_command("import_dataset", "fashioniq", str(build_fashioniq(tmp_path / "fiq")), "--name", "fiq",
                 "--categories", "dress", "--json", stdout=open(os.devnull, "w"))
    model = ModelEntry.objects.create(name="tiny-clip", family="clip_zeroshot", variant="sum",
                                      checkpoint_path=str(tiny_clip))
    dataset = Dataset.objects.get(name="fiq")

    def make(**fields) -> RetrievalRun:
        return RetrievalRun.objects.create(model=model, dataset=dataset, split="val", topk=3, **fields)

    return make, "gpu.retrieval.run", "catalog_query"


@pytest.fixture
def score_job(tmp_path, tiny_clip):
    root = tmp_path / "images"
    root.mkdir()
    dataset = Dataset.objects.create(name="tiny", kind=Dataset.Kind.FASHIONIQ, image_root=str(root))
    ids = []
    for n in range(4):
        PILImage.fromarray(np.full((32, 32, 3), 60 * n, dtype=np.uint8)).save(root / f"im{n}.png")
        ids.append(Image.objects.create(dataset=dataset, name=f"im{n}", category="shirt", split="val",
                                        file_path=f"im{n}.png").pk)
    pairs = [PairSpec(reference_id=ids[0], text="is red", set1=(ids[1],), set2=(ids[2], ids[3]), preference=1),
             PairSpec(reference_id=ids[1], text="is blue", set1=(ids[0], ids[2]), set2=(ids[3],), preference=2)]
    benchmark = benchmark_store(name="tiny", source="imported", dataset=dataset, pairs=pairs).benchmark
    model = ModelEntry.objects.create(name="tiny-clip", family="clip_zeroshot", variant="sum",
                                      checkpoint_path=str(tiny_clip))

    def make(**fields) -> ModelScore:
        return ModelScore.objects.create(model=model, benchmark=benchmark, **fields)

    return make, "gpu.scoring.score_model", "leaderboard_benchmarkpair"


@pytest.fixture(params=["retrieval", "score"])
def job(request):
    return request.getfixturevalue(f"{request.param}_job")


def _start_held(processes: Processes, job, **fields):
    """A gpu worker (prefork, one child) holding the job mid-run: returns (worker, row, lock, first owner)."""
    make, task, table = job
    worker, _ = processes.worker(queues="gpu", pool=["-P", "prefork", "-c", "1"])
    lock = TableLock(table)
    row = make(**fields)
    processes.app.send_task(task, args=[row.pk], queue="gpu")
    _wait(row, lambda r: r.status == "running" and r.claimed_by, what="claim", seconds=60)
    return worker, row, lock, row.claimed_by


def test_a_job_whose_pool_child_is_sigkilled_is_taken_over_at_once_and_finishes(processes, job):
    worker, row, lock, first = _start_held(processes, job)
    try:
        killed = time.monotonic()
        os.kill(_pid(first), signal.SIGKILL)
        # The message comes back to the same worker, whose new child sees the owner's process is gone.
        _wait(row, lambda r: r.claimed_by and r.claimed_by != first, what="take-over")
        taken = time.monotonic() - killed
        lock.release()
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        print(f"\n{type(row).__name__} x pool child SIGKILL: {row.status}, taken over after {taken:.1f} s, "
              f"ended {time.monotonic() - killed:.1f} s after the kill, restarts {row.restarts}")
        assert row.status == "finished", row.error
        assert row.restarts == 1 and worker.poll() is None
    finally:
        lock.release()


def test_a_job_whose_whole_worker_is_sigkilled_is_queued_again_by_the_reaper_and_finishes(processes, job):
    worker, row, lock, first = _start_held(processes, job)
    try:
        killed = time.monotonic()
        os.killpg(worker.pid, signal.SIGKILL)  # the main process and its pool at once
        worker.wait(timeout=30)
        # Redis keeps the unacknowledged message for the visibility timeout (an hour); the reaper does not wait.
        _wait(row, lambda r: r.status == "queued" and r.restarts == 1, what="requeue")
        requeued = time.monotonic() - killed
        lock.release()
        processes.worker(queues="gpu", pool=["-P", "prefork", "-c", "1"])
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        print(f"\n{type(row).__name__} x whole worker SIGKILL: {row.status}, requeued after {requeued:.1f} s, "
              f"ended {time.monotonic() - killed:.1f} s after the kill (new worker started), restarts {row.restarts}")
        assert row.status == "finished", row.error
        assert row.claimed_by != first
    finally:
        lock.release()


def test_a_job_that_keeps_losing_its_worker_is_failed_by_the_reaper(processes, retrieval_job):
    worker, row, lock, first = _start_held(processes, retrieval_job, restarts=2)
    try:
        killed = time.monotonic()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        print(f"\n{type(row).__name__} x whole worker SIGKILL, third loss: {row.status} "
              f"{time.monotonic() - killed:.1f} s after the kill: {row.error}")
        assert row.status == "failed" and row.finished_at is not None
        assert "worker was lost 3 times" in row.error and first in row.error
    finally:
        lock.release()


@pytest.fixture
def training_job(tmp_path):
    """(make a queued TrainingJob, its task, the table it reads after its claim); writes ``tmp_path/train-out``."""
    from hpbench.catalog.demo import make_demo_dataset
    from hpbench.catalog.importers import import_fashioniq
    from hpbench.catalog.models import TrainingJob

    import_fashioniq(make_demo_dataset(tmp_path / "demo", seed=1, per_category=10).out, name="demo-tiny")

    def make(**fields) -> TrainingJob:
        return TrainingJob.objects.create(family="demo", dataset="demo-tiny", objective="contrastive", epochs=1,
                                          out_dir=str(tmp_path / "train-out"), batch_size=4, **fields)

    return make, "gpu.training.train_model", "catalog_query"  # it reads its queries after taking its folder


def _trained(row) -> None:
    out = Path(row.out_dir)
    assert (out / "model.safetensors").is_file() and (out / "training.json").is_file()
    assert not (out / ".training.lock").exists()
    assert row.summary["epochs_run"] == 1 and row.progress == 1.0 and row.finished_at is not None


def test_a_training_whose_pool_child_is_sigkilled_resumes_in_the_redelivered_task(processes, training_job):
    worker, row, lock, first = _start_held(processes, training_job)
    try:
        killed = time.monotonic()
        os.kill(_pid(first), signal.SIGKILL)
        _wait(row, lambda r: r.claimed_by and r.claimed_by != first, what="take-over")
        lock.release()
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        print(f"\ntraining x pool child SIGKILL: {row.status} {time.monotonic() - killed:.1f} s after the kill")
        assert row.status == "finished", row.error
        assert row.restarts == 1
        _trained(row)
    finally:
        lock.release()


def test_a_training_whose_whole_worker_is_sigkilled_is_queued_again_by_the_reaper_and_finishes(
    processes, training_job
):
    worker, row, lock, first = _start_held(processes, training_job)
    try:
        killed = time.monotonic()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        _wait(row, lambda r: r.status == "queued" and r.restarts == 1, what="requeue")
        lock.release()
        processes.worker(queues="gpu", pool=["-P", "prefork", "-c", "1"])
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        print(f"\ntraining x whole worker SIGKILL: {row.status} {time.monotonic() - killed:.1f} s after the kill")
        assert row.status == "finished", row.error
        assert row.claimed_by != first
        _trained(row)
    finally:
        lock.release()


def test_a_job_whose_message_was_lost_is_sent_again_by_the_reaper_and_finishes(processes, retrieval_job):
    make, _, _ = retrieval_job
    processes.worker(queues="gpu", pool=["-P", "prefork", "-c", "1"])
    row = make()  # queued, and its message lost (the broker lost its queues): nothing was sent
    row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
    assert row.status == "finished", row.error
    assert row.restarts == 0


def _backends_waiting_on(table_fragment: str) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND query LIKE %s", [f"%{table_fragment}%"])
        return [pid for (pid,) in cursor.fetchall()]


def test_a_job_whose_worker_lost_its_database_connection_as_it_took_the_message_is_sent_again(
    processes, retrieval_job
):
    """The claim's UPDATE is waiting (a table lock) when the database drops its connection: the task fails, the
    message is acknowledged, the row stays queued. The reaper sends it again."""
    from django.db import connection

    make, _, _ = retrieval_job
    worker, _ = processes.worker(queues="gpu", pool=["-P", "prefork", "-c", "1"])
    row = make()
    lock = TableLock("catalog_retrievalrun")
    try:
        processes.app.send_task("gpu.retrieval.run", args=[row.pk], queue="gpu")
        deadline = time.monotonic() + 60
        while not (waiting := _backends_waiting_on('UPDATE "catalog_retrievalrun"')):
            assert time.monotonic() < deadline, "the worker's claim did not reach the database"
            time.sleep(0.1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [waiting[0]])
        lock.release()
        row = _wait(row, lambda r: r.status in ("finished", "failed", "cancelled"), what="end")
        assert row.status == "finished", row.error
        assert row.restarts == 0 and worker.poll() is None
    finally:
        lock.release()
