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
