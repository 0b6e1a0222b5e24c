"""The simulate_annotators command votes through a live server (annotate/management/commands)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotate import quality
from annotate.models import Annotator, Comparison, Vote
from tests.annotate.conftest import make_campaign, make_world


@pytest.mark.django_db(transaction=True)
def test_simulated_crowd_workers_fill_a_campaign_over_http(live_server):
    pytest.importorskip("hpbench.catalog.oracle")
    world = make_world(n_queries=6, n_images=60)
    campaign = make_campaign(world, votes_per_pair=2, per_person_quota=0, gold_share=0.25, ask_ratings=True)
    call_command(
        "simulate_annotators",
        campaign.slug,
        "--annotators",
        "3",
        "--noise",
        "0",
        "--url",
        live_server.url,
        "--seed",
        "1",
    )
    total = Comparison.objects.filter(campaign=campaign).count()
    assert Annotator.objects.filter(campaign=campaign, source="prolific").count() == 3
    assert Vote.objects.count() == 2 * total
    assert not Vote.objects.filter(rating_a__isnull=True).exists()
    figures = quality.annotator_figures(campaign=campaign)
    assert all(f.gold_accuracy == 1.0 for f in figures if f.gold_votes)
