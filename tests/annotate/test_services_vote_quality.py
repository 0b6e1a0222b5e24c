"""Quality at vote time (annotate/services/votes.py): too-fast flags, gold feedback, varied first tasks, and sets that
contain the unchanged reference image."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate import quality
from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from annotate.services.entry import annotator_enter
from annotate.services.next_task import assignment_next
from annotate.services.votes import Caller, vote_record
from tests.annotate.conftest import make_campaign, make_world

pytestmark = pytest.mark.django_db


def _crowd(campaign: Campaign, pid: str) -> Annotator:
    return annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": pid, "STUDY_ID": "st", "SESSION_ID": f"s-{pid}"}, user=None
    )


def _vote(annotator: Annotator, lease, choice: str = "left", *, leased_ago_s: float = 10.0, **extra):
    # The server's clock runs from when next-task served the task (shown_at).
    since = timezone.now() - timedelta(seconds=leased_ago_s)
    Assignment.objects.filter(lease=lease).update(created_at=since, shown_at=since)
    return vote_record(
        lease=lease,
        caller=Caller(annotator_ids=frozenset({annotator.pk})),
        choice=choice,
        idempotency_key=f"k-{lease}",
        **extra,
    )


def _lease(annotator: Annotator, campaign: Campaign):
    return assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task.lease


def test_a_vote_faster_than_the_minimum_is_accepted_but_flagged(world):
    campaign = make_campaign(world, min_vote_ms=1500, per_person_quota=0)
    annotator = _crowd(campaign, "P1")
    scripted = _lease(annotator, campaign)
    assert _vote(annotator, scripted, time_ms=39).created
    careful = _lease(annotator, campaign)
    _vote(annotator, careful, time_ms=4200)
    # A client that claims a long time but answers right after the lease is caught by the server's clock.
    lying = _lease(annotator, campaign)
    _vote(annotator, lying, time_ms=9000, leased_ago_s=0.2)
    untimed = _lease(annotator, campaign)
    _vote(annotator, untimed)
    flags = {v.assignment.lease: v.too_fast for v in Vote.objects.select_related("assignment")}
    assert flags == {scripted: True, careful: False, lying: True, untimed: False}
    assert quality.campaign_figures(campaign=campaign)["too_fast_votes"] == 2
    (figures,) = quality.annotator_figures(campaign=campaign)
    assert figures.too_fast_votes == 2


def test_no_minimum_flags_nothing(world):
    campaign = make_campaign(world, min_vote_ms=0)
    annotator = _crowd(campaign, "P1")
    _vote(annotator, _lease(annotator, campaign), time_ms=1, leased_ago_s=0)
    assert Vote.objects.get().too_fast is False


def test_gold_votes_get_feedback_only_where_the_campaign_asks(db):
    world = make_world(n_queries=12)
    for feedback in (True, False):
        campaign = make_campaign(world, gold_share=0.5, gold_feedback=feedback, votes_per_pair=1, per_person_quota=0)
        annotator = _crowd(campaign, f"P-{feedback}")
        results = {}
        while task := assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task:
            results[task.lease] = _vote(annotator, task.lease, "left")
        gold = {
            a.lease: a
            for a in Assignment.objects.select_related("comparison").filter(annotator=annotator)
            if a.comparison.is_gold
        }
        assert gold, "the campaign has gold tasks"
        for lease, result in results.items():
            if lease in gold and feedback:
                chosen = "a" if gold[lease].left_is_a else "b"
                assert result.correct is (chosen == gold[lease].comparison.gold_answer)
            else:
                assert result.correct is None


def test_new_annotators_start_at_different_comparisons_and_still_see_them_all(db):
    world = make_world(n_queries=8)
    campaign = make_campaign(world, votes_per_pair=30, per_person_quota=0)
    firsts = set()
    for i in range(12):
        annotator = _crowd(campaign, f"P{i}")
        task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
        firsts.add(Assignment.objects.get(lease=task.lease).comparison_id)
    assert len(firsts) >= 3, "twelve new annotators do not all get the same first comparison"

    # From a start past the last position the scan wraps around: every comparison is reached, in serving order.
    last = _crowd(campaign, "P-last")
    Annotator.objects.filter(pk=last.pk).update(start_position=10**15)
    seen = []
    while task := assignment_next(annotator_id=last.pk, campaign_slug=campaign.slug).task:
        seen.append(Assignment.objects.get(lease=task.lease).comparison_id)
        _vote(last, task.lease)
    assert seen == list(Comparison.objects.filter(campaign=campaign).order_by("position").values_list("pk", flat=True))


def test_the_build_flags_sets_that_contain_the_unchanged_reference(world):
    campaign = make_campaign(world)
    comparisons = list(Comparison.objects.filter(campaign=campaign).select_related("query"))
    for c in comparisons:
        ref = c.query.reference_id
        assert c.shows_reference is (ref in c.set_a_images or ref in c.set_b_images)
    assert {c.shows_reference for c in comparisons} == {True, False}
