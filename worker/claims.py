"""Claims on worker jobs: an owner, a heartbeat, reclaiming from lost workers, and the reaper.

A job row (a :class:`~hpbench.catalog.models.RetrievalRun`, a :class:`~hpbench.leaderboard.models.ModelScore`,
a campaign build on :class:`~annotate.models.Campaign` or an :class:`~hpbench.exports.models.ExportJob`; each
kind's status, start, end, error and progress fields are named by its :class:`JobKind`) is claimed with one
conditional UPDATE that writes status ``running``, ``claimed_by`` (``host:pid:task``) and ``heartbeat_at``.
While the job runs, :func:`heartbeat` refreshes ``heartbeat_at`` from a thread every
``HPBENCH_HEARTBEAT_SECONDS``; a row whose heartbeat is older than ``HPBENCH_HEARTBEAT_TIMEOUT`` belongs to a
worker that is gone. Such a row is taken over by whichever comes first:

- a redelivered task (``job_claim`` accepts a stale heartbeat, and at once an owner process on this machine
  that no longer exists: a SIGKILLed pool child's message comes straight back to the same worker);
- the reaper (:func:`jobs_reap`, task ``default.jobs.reap`` run by Celery beat every ``HPBENCH_REAP_SECONDS``,
  and by a thread of every worker while beat is missing), which puts the job back in the queue with a fresh
  message, or fails it once it has lost ``HPBENCH_JOB_RESTARTS`` workers (a job that kills its worker every
  time must not loop forever).

A stale heartbeat means a lost worker only while the database was reachable: the reaper trusts heartbeats once
it has itself run without a gap for a heartbeat timeout (``ReaperState.up_since``), so an outage that stopped the
heartbeats (and the reaper) does not count as lost workers. A queued row's ``heartbeat_at`` is when its message
was last sent (``created_at`` before that): the reaper sends again, idempotently, every job queued for longer
than ``HPBENCH_REQUEUE_QUEUED_SECONDS`` (a lost broker message; a worker that failed as it took the message).

The reaper also fails jobs running longer than the hard time limit (the solo pool of the embedded worker
enforces no time limit), and the job notices at its next heartbeat that the row is no longer its own.

This module imports no torch: the reaper runs on the ``default`` queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.models import Campaign
from hpbench import dispatch
from hpbench.catalog.models import JobStatus, ModelEntry, ReaperState, RetrievalRun, TrainingJob
from hpbench.exports.models import ExportJob
from hpbench.leaderboard.models import ModelScore, PreferenceModel

log = logging.getLogger(__name__)
Status = JobStatus


@dataclass(frozen=True)
class JobKind:
    """A kind of job row the claims apply to, the names of its fields, and the tasks that run one (they take the
    row's primary key): ``task``, or ``file_task`` (when set) for the authors' score files of a ``scores``-family
    model. Every kind has ``claimed_by``, ``heartbeat_at`` and ``restarts``; ``finished`` may be empty."""

    name: str
    model: type[models.Model]
    task: str
    file_task: str = ""
    status: str = "status"
    started: str = "started_at"
    finished: str = "finished_at"
    error: str = "error"
    progress: str = "progress"

    def task_for(self, family: str | None) -> str:
        return self.file_task if self.file_task and family == ModelEntry.Family.SCORES else self.task

    def q(self, status: str, **more) -> Q:
        """Rows in ``status`` (and matching ``more``)."""
        return Q(**{self.status: status}, **more)

    def ended(self, *, status: str, error: str, now: datetime) -> dict:
        """The fields that end a job with ``status`` and ``error``."""
        return {self.status: status, self.error: error, **({self.finished: now} if self.finished else {})}


KINDS = (
    JobKind("retrieval run", RetrievalRun, dispatch.RETRIEVAL_RUN, dispatch.SCOREFILE_RANKINGS),
    JobKind("score", ModelScore, dispatch.SCORE_MODEL, dispatch.SCOREFILE_SCORE, finished="computed_at"),
    JobKind("campaign build", Campaign, dispatch.CAMPAIGN_BUILD, status="build_status", started="build_started_at",
            finished="", error="build_error", progress="build_progress"),
    JobKind("export", ExportJob, dispatch.EXPORT_RUN),
    JobKind("training", TrainingJob, dispatch.TRAIN_MODEL),
    JobKind("preference model", PreferenceModel, dispatch.PREFERENCE_TRAIN),
)


def kind_of(model: type[models.Model]) -> JobKind:
    return next(kind for kind in KINDS if kind.model is model)


def heartbeat_seconds() -> float:
    return float(settings.HPBENCH_HEARTBEAT_SECONDS)


def heartbeat_timeout() -> timedelta:
    return timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT)


def hard_limit() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_HARD_TIME_LIMIT)


def worker_identity(task_id: str | None = None) -> str:
    """``host:pid:task`` of the calling process; ``task`` is the running Celery task's id when there is one."""
    if task_id is None:
        from celery import current_task

        task_id = getattr(getattr(current_task, "request", None), "id", None) if current_task else None
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or '-'}"


def owner_is_gone(owner: str) -> bool:
    """Whether ``owner`` (``host:pid:task``) names a process on this machine that no longer runs.

    Owners on other machines are never judged here: only their heartbeat tells.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this very process: the thread pool may run several jobs at once
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")  # a zombie: dead, not yet waited for by its parent


def _stale(kind: JobKind, now: datetime) -> Q:
    """Running rows whose worker stopped saying it is alive (rows from before heartbeats: by their start)."""
    return kind.q(Status.RUNNING) & (
        Q(heartbeat_at__lt=now - heartbeat_timeout())
        | Q(heartbeat_at__isnull=True, **{f"{kind.started}__lt": now - hard_limit()})
    )


def job_claim(*, model: type[models.Model], pk: int, owner: str, reset: dict | None = None) -> bool:
    """Claim a job row for ``owner``: queued, or running under a lost worker. Returns whether it is now ours.

    One conditional UPDATE (status, owner, heartbeat, start time and ``reset``'s fields), so two workers never
    both get it. A running row is taken over when its heartbeat is older than ``HPBENCH_HEARTBEAT_TIMEOUT``
    or its owner is a process of this machine that has died; taking over counts a restart. Finished,
    failed and cancelled rows, and rows held by a live worker, are refused.
    """
    now = timezone.now()
    kind = kind_of(model)
    fields = {kind.status: Status.RUNNING, "claimed_by": owner, "heartbeat_at": now, kind.started: now,
              **(reset or {})}
    rows = model._default_manager.filter(pk=pk)
    if rows.filter(kind.q(Status.QUEUED)).update(**fields):
        return True
    if rows.filter(_stale(kind, now)).update(**fields, restarts=F("restarts") + 1):
        log.warning("%s %s: taken over by %s after its worker's heartbeat stopped", model.__name__, pk, owner)
        return True
    previous = rows.filter(kind.q(Status.RUNNING)).values_list("claimed_by", flat=True).first()
    if previous and owner_is_gone(previous):
        if rows.filter(kind.q(Status.RUNNING, claimed_by=previous)).update(**fields, restarts=F("restarts") + 1):
            log.warning("%s %s: taken over by %s from %s, a process that died", model.__name__, pk, owner, previous)
            return True
    return False


def job_is_mine(*, model: type[models.Model], pk: int, owner: str) -> bool:
    """Whether the row is still running under ``owner`` (not cancelled, failed by the reaper, nor taken over)."""
    return model._default_manager.filter(kind_of(model).q(Status.RUNNING, pk=pk, claimed_by=owner)).exists()


class Heartbeat:
    """The running side of a claim: ``alive`` turns False once the row is no longer the job's own."""

    def __init__(self, *, model: type[models.Model], pk: int, owner: str) -> None:
        self.model, self.pk, self.owner = model, pk, owner
        self.alive = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{model.__name__}-{pk}", daemon=True)

    def beat(self) -> bool:
        """Refresh ``heartbeat_at`` now; returns (and remembers) whether the row is still ours."""
        mine = kind_of(self.model).q(Status.RUNNING, pk=self.pk, claimed_by=self.owner)
        rows = self.model._default_manager.filter(mine)
        self.alive = self.alive and rows.update(heartbeat_at=timezone.now()) == 1
        return self.alive

    def _run(self) -> None:
        wait = heartbeat_seconds()
        try:
            while not self._stop.wait(wait) and self.alive:
                try:
                    close_old_connections()  # a connection the database dropped is replaced, not reused
                    self.beat()
                    wait = heartbeat_seconds()
                except Exception as exc:  # a busy or unreachable database: try again soon, the outage may be short
                    log.warning("%s %s: heartbeat failed (%s: %s)", self.model.__name__, self.pk,
                                type(exc).__name__, str(exc).strip()[:300])
                    connection.close()
                    wait = min(heartbeat_seconds(), 1.0)
        finally:
            connection.close()  # this thread's own connection

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=heartbeat_seconds() + 30)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def heartbeat(*, model: type[models.Model], pk: int, owner: str) -> Iterator[Heartbeat]:
    """Keep the claimed row's heartbeat fresh while the block runs (a thread with its own connection)."""
    with Heartbeat(model=model, pk=pk, owner=owner) as beat:
        yield beat


# --------------------------------------------------------------------------------------------
# The reaper
# --------------------------------------------------------------------------------------------


def _reaper_trusts_heartbeats(now: datetime, *, by_beat: bool) -> bool:
    """Record this reaper run in :class:`ReaperState` and say whether stale heartbeats mean lost workers now.

    A gap since the previous run longer than a heartbeat timeout less one heartbeat (or two reaper periods)
    means the reaper itself could not run, most likely because the database was down, and then the workers'
    heartbeats could not be written either: they are trusted again once the reaper has run for a heartbeat timeout
    since. The very first run (no record) trusts them.
    """
    gap = max(heartbeat_timeout() - timedelta(seconds=heartbeat_seconds()),
              timedelta(seconds=2 * settings.HPBENCH_REAP_SECONDS))
    state, _ = ReaperState.objects.get_or_create(pk=1)
    up_since = state.up_since
    if state.ran_at is None or up_since is None:
        up_since = now - heartbeat_timeout()
    elif now - state.ran_at > gap:
        log.warning("the reaper last ran %s ago: lost workers are judged again from now on", now - state.ran_at)
        up_since = now
    fields = {"ran_at": now, "up_since": up_since, **({"beat_ran_at": now} if by_beat else {})}
    ReaperState.objects.filter(pk=1).update(**fields)
    return up_since <= now - heartbeat_timeout()


def jobs_reap(*, now: datetime | None = None, by_beat: bool = False) -> dict[str, int]:
    """Requeue or fail every running job whose worker is lost, fail those past the hard time limit, and send
    again the jobs queued too long.

    A row with a stale heartbeat (older than ``HPBENCH_HEARTBEAT_TIMEOUT``) goes back to ``queued`` with a new
    task message (sent after commit), or is failed once it has already replaced ``HPBENCH_JOB_RESTARTS`` lost
    workers; not while the reaper's own record shows it could not run lately (a database outage: see
    :func:`_reaper_trusts_heartbeats`). A row started longer ago than the hard time limit (plus one heartbeat
    timeout of grace) is failed whatever its heartbeat says. A row queued for ``HPBENCH_REQUEUE_QUEUED_SECONDS``
    since its message was sent gets another message. Each change is a conditional UPDATE on the row as it was
    read, so a worker finishing at the same moment (or another reaper) wins. ``by_beat``: run by Celery beat
    (recorded for ``/healthz``). Returns counts: ``requeued``, ``failed_lost``, ``failed_time_limit``, ``resent``.
    """
    now = now or timezone.now()
    counts = {"requeued": 0, "failed_lost": 0, "failed_time_limit": 0, "resent": 0}
    trusted = _reaper_trusts_heartbeats(now, by_beat=by_beat)
    limit = settings.HPBENCH_JOB_RESTARTS
    for kind in KINDS:
        rows = kind.model._default_manager
        over = now - hard_limit() - heartbeat_timeout()
        message = f"failed: ran past the hard time limit ({settings.CELERY_TASK_HARD_TIME_LIMIT} s)"
        counts["failed_time_limit"] += rows.filter(kind.q(Status.RUNNING, **{f"{kind.started}__lt": over})).update(
            **kind.ended(status=Status.FAILED, error=message, now=now)
        )
        family_field = "model__family" if kind.file_task else "restarts"  # only runs and scores have a model
        counts["resent"] += _resend_queued(kind, now, family_field)
        if not trusted:
            continue
        for pk, owner, beat, restarts, family in rows.filter(_stale(kind, now)).values_list(
            "pk", "claimed_by", "heartbeat_at", "restarts", family_field
        ):
            same = rows.filter(kind.q(Status.RUNNING, pk=pk, claimed_by=owner, heartbeat_at=beat))
            last = beat.isoformat(timespec="seconds") if beat else "never"
            if restarts >= limit:
                error = (f"failed: its worker was lost {restarts + 1} times (last {owner or 'unknown'}, "
                         f"last heartbeat {last})")
                if same.update(**kind.ended(status=Status.FAILED, error=error, now=now)):
                    counts["failed_lost"] += 1
                    log.error("%s %s: %s", kind.name, pk, error)
                continue
            with transaction.atomic():
                if same.update(**{kind.status: Status.QUEUED, kind.progress: 0.0}, claimed_by="", heartbeat_at=now,
                               restarts=F("restarts") + 1):
                    counts["requeued"] += 1
                    log.warning("%s %s: worker %s lost (last heartbeat %s); queued again", kind.name, pk, owner,
                                last)
                    dispatch.task_send_on_commit(kind.task_for(family), pk)
    return counts


def _resend_queued(kind: JobKind, now: datetime, family_field: str) -> int:
    """Send again the task of every ``kind`` row queued for ``HPBENCH_REQUEUE_QUEUED_SECONDS`` since its message
    was last sent (``heartbeat_at``, else ``created_at``), and note the time; returns how many."""
    rows = kind.model._default_manager
    before = now - timedelta(seconds=settings.HPBENCH_REQUEUE_QUEUED_SECONDS)
    waiting = rows.filter(kind.q(Status.QUEUED)).alias(sent=Coalesce("heartbeat_at", "created_at")).filter(
        sent__lt=before)
    resent = 0
    for pk, sent, family in waiting.values_list("pk", "heartbeat_at", family_field):
        with transaction.atomic():
            if rows.filter(kind.q(Status.QUEUED, pk=pk, heartbeat_at=sent)).update(heartbeat_at=now):
                resent += 1
                log.warning("%s %s: still queued %s after its message was sent; sent again", kind.name, pk,
                            "long" if sent is None else now - sent)
                dispatch.task_send_on_commit(kind.task_for(family), pk)
    return resent

