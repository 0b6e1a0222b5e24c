"""Claims on worker jobs: owners, heartbeats, taking over from lost workers, and the reaper (on PostgreSQL)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from worker import claims

pytestmark = pytest.mark.django_db(transaction=True)
HOST = socket.gethostname()


@pytest.fixture
def run() -> RetrievalRun:
    dataset = Dataset.objects.create(name="d", kind=Dataset.Kind.DEMO, image_root="/nowhere")
    model = ModelEntry.objects.create(name="m", family=ModelEntry.Family.DEMO)
    return RetrievalRun.objects.create(model=model, dataset=dataset)


@pytest.fixture
def score(run) -> ModelScore:
    benchmark = PreferenceBenchmark.objects.create(
        name="b", version=1, source=PreferenceBenchmark.Source.IMPORTED, dataset=run.dataset, fingerprint="f"
    )
    return ModelScore.objects.create(model=run.model, benchmark=benchmark)


def _set(row, **fields) -> None:
    type(row).objects.filter(pk=row.pk).update(**fields)
    row.refresh_from_db()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_queued_job_is_claimed_by_one_owner_only(run):
    assert claims.job_claim(model=RetrievalRun, pk=run.pk, owner="a:1:t1")
    assert not claims.job_claim(model=RetrievalRun, pk=run.pk, owner="b:2:t2")
    run.refresh_from_db()
    assert (run.status, run.claimed_by, run.restarts) == ("running", "a:1:t1", 0)
    assert run.heartbeat_at is not None and run.started_at is not None


def test_a_running_job_with_a_fresh_heartbeat_on_another_machine_is_not_taken_over(run):
    _set(run, status="running", claimed_by="elsewhere:1:t", heartbeat_at=timezone.now(), started_at=timezone.now())
    assert not claims.job_claim(model=RetrievalRun, pk=run.pk, owner=claims.worker_identity("t2"))


def test_a_job_whose_heartbeat_stopped_is_taken_over_and_counts_a_restart(run, settings):
    old = timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 1)
    _set(run, status="running", claimed_by="elsewhere:1:t", heartbeat_at=old, started_at=old)
    assert claims.job_claim(model=RetrievalRun, pk=run.pk, owner="here:2:t2")
    run.refresh_from_db()
    assert (run.status, run.claimed_by, run.restarts) == ("running", "here:2:t2", 1)
    assert run.heartbeat_at > old


def test_a_job_whose_owner_process_died_on_this_machine_is_taken_over_at_once(score):
    dead = f"{HOST}:{_dead_pid()}:t1"
    _set(score, status="running", claimed_by=dead, heartbeat_at=timezone.now(), started_at=timezone.now())
    assert claims.job_claim(model=ModelScore, pk=score.pk, owner=claims.worker_identity("t2"))
    score.refresh_from_db()
    assert score.claimed_by.endswith(":t2") and score.restarts == 1


def test_a_live_owner_process_on_this_machine_keeps_its_job(score):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        try:
            _set(score, status="running", claimed_by=f"{HOST}:{alive.pid}:t1", heartbeat_at=timezone.now())
            assert not claims.job_claim(model=ModelScore, pk=score.pk, owner=claims.worker_identity("t2"))
        finally:
            alive.kill()


@pytest.mark.parametrize("status", ["finished", "failed", "cancelled"])
def test_an_ended_job_is_never_claimed(run, status, settings):
    old = timezone.now() - timedelta(days=1)
    _set(run, status=status, claimed_by=f"{HOST}:{_dead_pid()}:t", heartbeat_at=old, started_at=old)
    assert not claims.job_claim(model=RetrievalRun, pk=run.pk, owner="x:1:t")
    run.refresh_from_db()
    assert run.status == status


def test_the_heartbeat_keeps_the_row_fresh_and_notices_when_the_job_is_no_longer_its_own(run, settings):
    settings.HPBENCH_HEARTBEAT_SECONDS = 0.2
    claims.job_claim(model=RetrievalRun, pk=run.pk, owner="me:1:t")
    first = RetrievalRun.objects.get(pk=run.pk).heartbeat_at
    with claims.heartbeat(model=RetrievalRun, pk=run.pk, owner="me:1:t") as beat:
        time.sleep(0.7)
        assert RetrievalRun.objects.get(pk=run.pk).heartbeat_at > first and beat.alive
        _set(run, claimed_by="other:2:t")  # taken over
        deadline = time.monotonic() + 5
        while beat.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not beat.alive


@pytest.fixture
def sent():
    with mock.patch("hpbench.celery.app.send_task") as send_task:
        yield send_task


def test_the_reaper_queues_again_a_job_whose_heartbeat_stopped(run, score, sent, settings,
                                                               django_capture_on_commit_callbacks):
    old = timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 5)
    _set(run, status="running", claimed_by="gone:1:t", heartbeat_at=old, started_at=old, progress=0.4)
    _set(score, status="running", claimed_by="gone:1:u", heartbeat_at=old, started_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        counts = claims.jobs_reap()
    assert counts == {"requeued": 2, "failed_lost": 0, "failed_time_limit": 0, "resent": 0}
    run.refresh_from_db()
    score.refresh_from_db()
    assert (run.status, run.claimed_by, run.progress, run.restarts) == ("queued", "", 0.0, 1)
    assert run.heartbeat_at > old  # a queued row's heartbeat_at: when its message was sent
    assert (score.status, score.restarts) == ("queued", 1)
    assert sorted((c.args[0], c.kwargs["args"]) for c in sent.call_args_list) == [
        ("gpu.retrieval.run", [run.pk]), ("gpu.scoring.score_model", [score.pk])
    ]


def test_the_reaper_fails_a_job_that_lost_too_many_workers(run, sent, settings):
    settings.HPBENCH_JOB_RESTARTS = 2
    old = timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 5)
    _set(run, status="running", claimed_by="gone:7:t", heartbeat_at=old, started_at=old, restarts=2)
    assert claims.jobs_reap()["failed_lost"] == 1
    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at is not None
    assert "worker was lost 3 times" in run.error and "gone:7:t" in run.error
    sent.assert_not_called()


def test_the_reaper_fails_a_job_past_the_hard_time_limit_even_with_a_fresh_heartbeat(score, settings):
    started = timezone.now() - timedelta(
        seconds=settings.CELERY_TASK_HARD_TIME_LIMIT + settings.HPBENCH_HEARTBEAT_TIMEOUT + 5
    )
    _set(score, status="running", claimed_by="busy:1:t", heartbeat_at=timezone.now(), started_at=started)
    assert claims.jobs_reap()["failed_time_limit"] == 1
    score.refresh_from_db()
    assert score.status == "failed" and "hard time limit" in score.error and score.computed_at is not None


def test_the_reaper_leaves_live_queued_and_ended_jobs_alone(run, score, sent):
    _set(run, status="running", claimed_by="busy:1:t", heartbeat_at=timezone.now(), started_at=timezone.now())
    assert claims.jobs_reap() == {"requeued": 0, "failed_lost": 0, "failed_time_limit": 0, "resent": 0}
    run.refresh_from_db()
    score.refresh_from_db()
    assert run.status == "running" and score.status == "queued"
    sent.assert_not_called()


def test_a_job_from_before_heartbeats_is_reaped_by_its_start_time(run, sent, settings):
    started = timezone.now() - timedelta(seconds=settings.CELERY_TASK_HARD_TIME_LIMIT - 5)
    _set(run, status="running", claimed_by="", heartbeat_at=None, started_at=started)
    assert claims.jobs_reap()["requeued"] == 0
    _set(run, started_at=started - timedelta(seconds=10))
    assert claims.jobs_reap()["requeued"] == 1


def test_the_reaper_queues_a_score_file_job_again_on_its_own_task(run, score, sent, settings,
                                                                  django_capture_on_commit_callbacks):
    ModelEntry.objects.filter(pk=run.model_id).update(family=ModelEntry.Family.SCORES)
    old = timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 5)
    _set(run, status="running", claimed_by="gone:1:t", heartbeat_at=old, started_at=old)
    _set(score, status="running", claimed_by="gone:1:u", heartbeat_at=old, started_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap()["requeued"] == 2
    assert sorted((c.args[0], c.kwargs["args"]) for c in sent.call_args_list) == [
        ("default.scorefiles.rankings", [run.pk]), ("default.scorefiles.score", [score.pk])
    ]


def test_campaign_builds_and_exports_are_claimed_requeued_and_failed_on_their_own_fields(
    run, sent, settings, django_capture_on_commit_callbacks
):
    from annotate.models import Campaign
    from hpbench.exports.models import ExportJob

    campaign = Campaign.objects.create(slug="c", name="c", dataset=run.dataset, build_status="queued")
    export = ExportJob.objects.create(format="jsonl", status="queued")
    assert claims.job_claim(model=Campaign, pk=campaign.pk, owner="gone:1:t")
    assert claims.job_claim(model=ExportJob, pk=export.pk, owner="gone:1:u")
    campaign.refresh_from_db()
    assert (campaign.build_status, campaign.claimed_by, campaign.status) == ("running", "gone:1:t", "draft")
    old = timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 5)
    _set(campaign, heartbeat_at=old, build_progress=0.5)
    _set(export, heartbeat_at=old, started_at=old - timedelta(seconds=settings.CELERY_TASK_HARD_TIME_LIMIT))
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap() == {"requeued": 1, "failed_lost": 0, "failed_time_limit": 1, "resent": 0}
    campaign.refresh_from_db()
    export.refresh_from_db()
    assert (campaign.build_status, campaign.build_progress, campaign.restarts) == ("queued", 0.0, 1)
    assert export.status == "failed" and "hard time limit" in export.error and export.finished_at is not None
    assert [(c.args[0], c.kwargs["args"]) for c in sent.call_args_list] == [("default.campaigns.build", [campaign.pk])]


def _sends(sent) -> list:
    return sorted((c.args[0], c.kwargs["args"]) for c in sent.call_args_list)


def test_the_reaper_sends_again_every_kind_of_job_queued_too_long_and_then_waits_again(
    run, score, sent, settings, django_capture_on_commit_callbacks
):
    from annotate.models import Campaign
    from hpbench.catalog.models import TrainingJob
    from hpbench.exports.models import ExportJob

    settings.HPBENCH_REQUEUE_QUEUED_SECONDS = 600
    campaign = Campaign.objects.create(slug="c", name="c", dataset=run.dataset, build_status="queued")
    export = ExportJob.objects.create(format="jsonl")
    training = TrainingJob.objects.create(family="demo", dataset="d", objective="qure", epochs=1, out_dir="/x")
    fresh = ExportJob.objects.create(format="jsonl")  # queued a moment ago: its message is surely on its way
    long_ago = timezone.now() - timedelta(seconds=700)
    for row in (run, score, campaign, export, training):  # messages lost (a broker that lost its queues)
        type(row).objects.filter(pk=row.pk).update(created_at=long_ago)
    _set(score, heartbeat_at=long_ago)  # sent again (by the reaper or a request) long ago
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap()["resent"] == 5
    assert _sends(sent) == sorted([
        ("gpu.retrieval.run", [run.pk]), ("gpu.scoring.score_model", [score.pk]),
        ("default.campaigns.build", [campaign.pk]), ("default.exports.run", [export.pk]),
        ("gpu.training.train_model", [training.pk]),
    ])
    fresh.refresh_from_db()
    assert fresh.heartbeat_at is None and fresh.status == "queued"
    sent.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):  # the next message waits its period
        assert claims.jobs_reap()["resent"] == 0
    sent.assert_not_called()
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap(now=timezone.now() + timedelta(seconds=601))["resent"] == 6  # with the fresh one


def test_asking_again_for_a_queued_score_or_build_sends_its_message_again(
    run, score, sent, django_capture_on_commit_callbacks
):
    from annotate.models import Campaign
    from annotate.services.campaigns import campaign_build_enqueue
    from hpbench.leaderboard.services.scores import model_scores_request

    campaign = Campaign.objects.create(slug="c", name="c", dataset=run.dataset, build_status="queued")
    with django_capture_on_commit_callbacks(execute=True):
        assert [s.pk for s in model_scores_request(model=score.model, benchmarks=[score.benchmark], force=True)] == [
            score.pk]
        assert campaign_build_enqueue(campaign=campaign) is True
    assert _sends(sent) == sorted([("gpu.scoring.score_model", [score.pk]), ("default.campaigns.build", [campaign.pk])])
    score.refresh_from_db()
    assert score.status == "queued" and score.heartbeat_at is not None
    _set(score, status="running", claimed_by=f"{HOST}:1:t", heartbeat_at=timezone.now())
    Campaign.objects.filter(pk=campaign.pk).update(build_status="running")
    sent.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):  # running: not sent twice
        assert model_scores_request(model=score.model, benchmarks=[score.benchmark], force=True) == []
        assert campaign_build_enqueue(campaign=campaign) is False
    sent.assert_not_called()


def test_after_a_gap_in_its_own_runs_the_reaper_waits_a_heartbeat_timeout_before_judging_heartbeats(
    run, sent, settings, django_capture_on_commit_callbacks
):
    """The database was down: neither the workers' heartbeats nor the reaper could be written meanwhile."""
    from hpbench.catalog.models import ReaperState

    timeout = timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT)
    now = timezone.now()
    ReaperState.objects.create(pk=1, ran_at=now - 2 * timeout, up_since=now - 10 * timeout)
    _set(run, status="running", claimed_by="elsewhere:1:t", heartbeat_at=now - timeout - timedelta(seconds=30),
         started_at=now - 3 * timeout)
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap(now=now)["requeued"] == 0
        assert claims.jobs_reap(now=now + timeout / 2)["requeued"] == 0  # the worker's heartbeat may come back
    run.refresh_from_db()
    assert run.status == "running" and run.restarts == 0
    with django_capture_on_commit_callbacks(execute=True):  # it did not: a heartbeat timeout of reaping later
        assert claims.jobs_reap(now=now + timeout + timedelta(seconds=1))["requeued"] == 1
    state = ReaperState.objects.get(pk=1)
    assert state.up_since == now and state.beat_ran_at is None


def test_a_training_job_is_claimed_and_requeued_like_the_others(run, sent, settings,
                                                                django_capture_on_commit_callbacks):
    from hpbench.catalog.models import TrainingJob

    job = TrainingJob.objects.create(family="demo", dataset="d", objective="qure", epochs=1, out_dir="/x")
    assert claims.job_claim(model=TrainingJob, pk=job.pk, owner="gone:1:t")
    assert not claims.job_claim(model=TrainingJob, pk=job.pk, owner="gone:2:t")
    _set(job, heartbeat_at=timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 5))
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap()["requeued"] == 1
    job.refresh_from_db()
    assert (job.status, job.restarts) == ("queued", 1)
    assert _sends(sent) == [("gpu.training.train_model", [job.pk])]


def test_the_reaper_queues_again_a_preference_model_whose_worker_is_lost(score, sent, settings,
                                                                        django_capture_on_commit_callbacks):
    from hpbench.leaderboard.models import PreferenceModel

    row = PreferenceModel.objects.create(benchmark=score.benchmark, version=1, method="logreg-v1")
    old = timezone.now() - timedelta(seconds=settings.HPBENCH_HEARTBEAT_TIMEOUT + 5)
    _set(row, status="running", claimed_by="gone:1:p", heartbeat_at=old, started_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.jobs_reap()["requeued"] == 1
    row.refresh_from_db()
    assert (row.status, row.restarts) == ("queued", 1)
    assert [(c.args[0], c.kwargs["args"]) for c in sent.call_args_list] == [("gpu.preference.train", [row.pk])]
