"""The campaign build task on a real Celery worker (worker/tasks/campaigns.py)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from annotate.models import Campaign, Comparison
from annotate.services.campaigns import campaign_build_enqueue
from tests.annotate.conftest import make_campaign, make_world
from worker.tasks.campaigns import build


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_a_queued_campaign_once(celery_worker_process):
    world = make_world(n_queries=5)
    campaign = make_campaign(world, build=False, status=Campaign.Status.DRAFT)
    with transaction.atomic():
        assert campaign_build_enqueue(campaign=campaign) is True
        # Asking again while queued sends the message again (the first may be lost); the build still runs once.
        assert campaign_build_enqueue(campaign=campaign) is True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        campaign.refresh_from_db()
        if campaign.build_status in (Campaign.BuildStatus.BUILT, Campaign.BuildStatus.FAILED):
            break
        time.sleep(0.2)
    assert (campaign.build_status, campaign.build_error) == (Campaign.BuildStatus.BUILT, "")
    assert campaign.build_progress == 1.0
    assert Comparison.objects.filter(campaign=campaign).count() == 5
    # A duplicate message finds nothing queued and does nothing.
    assert build.delay(campaign.pk).get(timeout=30) == 0


@pytest.mark.django_db
def test_a_failed_build_names_the_problem(db):
    world = make_world(n_queries=2, n_models=2)
    campaign = make_campaign(world, build=False, status=Campaign.Status.DRAFT)
    campaign.models.set(world.models[:1])
    Campaign.objects.filter(pk=campaign.pk).update(build_status=Campaign.BuildStatus.QUEUED)
    assert build.run(campaign.pk) == 0
    campaign.refresh_from_db()
    assert campaign.build_status == Campaign.BuildStatus.FAILED
    assert "needs at least two models" in campaign.build_error


@pytest.mark.django_db
def test_beat_runs_quality_control_on_open_campaigns_only(db):
    from django.utils import timezone

    from annotate.models import Annotator, Assignment, Vote
    from hpbench.celery import app
    from worker.tasks.campaigns import quality

    assert app.conf.beat_schedule["campaign-quality"]["task"] == quality.name
    world = make_world(n_queries=4)
    open_one, draft = make_campaign(world, gold_min_votes=1), make_campaign(world, status=Campaign.Status.DRAFT)
    for campaign in (open_one, draft):
        gold = Comparison.objects.filter(campaign=campaign).first()
        Comparison.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer="a")
        annotator = Annotator.objects.create(campaign=campaign, source="prolific", external_id_hash=campaign.slug)
        lease = Assignment.objects.create(
            campaign=campaign, annotator=annotator, comparison=gold, left_is_a=True, expires_at=timezone.now()
        )
        Vote.objects.create(
            assignment=lease, comparison=gold, annotator=annotator, choice="b", idempotency_key=str(gold.pk)
        )
    assert quality.run() == {open_one.slug: 1}
    assert list(Annotator.objects.filter(flagged=True).values_list("campaign_id", flat=True)) == [open_one.pk]
