"""The counted-vote rule (annotate/models.py): one definition for the freeze, the arena and the exports."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Count
from django.utils import timezone

from annotate.models import Annotator, Assignment, Comparison, Vote, counted_votes_q
from tests.annotate.conftest import make_campaign, make_world

pytestmark = pytest.mark.django_db


def _vote(comparison: Comparison, annotator: Annotator, *, excluded: bool = False) -> Vote:
    assignment = Assignment.objects.create(
        campaign=comparison.campaign, annotator=annotator, comparison=comparison, left_is_a=True,
        state="submitted", expires_at=timezone.now(),
    )
    return Vote.objects.create(assignment=assignment, comparison=comparison, annotator=annotator, choice="a",
                               excluded=excluded, idempotency_key=uuid.uuid4().hex)


def test_a_vote_counts_unless_it_is_excluded_or_its_annotator_is_flagged():
    campaign = make_campaign(make_world(n_queries=1))
    comparison = Comparison.objects.get(campaign=campaign)
    kept, flagged, excluder = (Annotator.objects.create(campaign=campaign, source="account") for _ in range(3))
    Annotator.objects.filter(pk=flagged.pk).update(flagged=True)
    counted = _vote(comparison, kept)
    _vote(comparison, flagged)
    _vote(comparison, excluder, excluded=True)

    assert list(Vote.objects.counted()) == [counted]
    # The same rule seen from a comparison, as the exports aggregate it.
    totals = Comparison.objects.filter(pk=comparison.pk).aggregate(
        all=Count("votes"), counted=Count("votes", filter=counted_votes_q("votes__"))
    )
    assert totals == {"all": 3, "counted": 1}
