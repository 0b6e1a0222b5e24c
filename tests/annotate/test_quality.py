"""Quality figures and gold-based flagging (annotate/quality.py), on hand-built votes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from annotate import quality
from annotate.models import Annotator, Assignment, Comparison, Vote
from tests.annotate.conftest import make_campaign


def test_reliability_matches_a_hand_computed_case():
    units = {1: ["a", "a"], 2: ["a", "b"], 3: ["b", "b"], 4: ["a"]}
    # Coincidences: o_aa=2, o_ab=o_ba=1, o_bb=2; n_a=n_b=3, n=6 -> alpha = 1 - 5*2/18.
    assert quality.krippendorff_alpha_nominal(units) == pytest.approx(1 - 10 / 18)
    assert quality.pairwise_agreement(units) == pytest.approx(2 / 3)
    assert quality.krippendorff_alpha_nominal({1: ["a", "a"], 2: ["a", "a"]}) is None
    assert quality.pairwise_agreement({1: ["a"]}) is None
    # Three labels on one unit: 3 pairs, 1 agreeing.
    assert quality.pairwise_agreement({1: ["a", "a", "b"]}) == pytest.approx(1 / 3)


def _vote(annotator, comparison, choice, *, time_ms=1000, irrelevant=False):
    assignment = Assignment.objects.create(
        campaign=comparison.campaign,
        annotator=annotator,
        comparison=comparison,
        left_is_a=True,
        expires_at=timezone.now(),
        state="submitted",
    )
    return Vote.objects.create(
        assignment=assignment,
        comparison=comparison,
        annotator=annotator,
        choice=choice,
        time_ms=time_ms,
        irrelevant=irrelevant,
        idempotency_key=f"{annotator.pk}-{comparison.pk}",
    )


@pytest.mark.django_db
def test_annotator_and_campaign_figures_and_flagging(world):
    campaign = make_campaign(world, gold_min_accuracy=0.7, gold_min_votes=2, votes_per_pair=3)
    comparisons = list(Comparison.objects.filter(campaign=campaign).order_by("pk"))
    gold1, gold2 = comparisons[4], comparisons[5]
    Comparison.objects.filter(pk__in=[gold1.pk, gold2.pk]).update(is_gold=True, gold_answer="a")
    gold1.refresh_from_db()
    gold2.refresh_from_db()
    good, other, bad = (
        Annotator.objects.create(campaign=campaign, source="prolific", external_id_hash=h) for h in ("h1", "h2", "h3")
    )
    c1, c2 = comparisons[0], comparisons[1]
    _vote(good, c1, "a", time_ms=1000)
    _vote(other, c1, "a", time_ms=3000)
    _vote(bad, c1, "b", time_ms=500, irrelevant=True)
    _vote(good, c2, "b", time_ms=2000)
    _vote(other, c2, "tie")
    for g in (gold1, gold2):
        _vote(good, g, "a")
        _vote(bad, g, "b")

    figures = {f.annotator_id: f for f in quality.annotator_figures(campaign=campaign)}
    assert figures[good.pk].votes == 4 and figures[good.pk].gold_accuracy == 1.0
    assert figures[bad.pk].gold_accuracy == 0.0
    # good on c1: others a,b -> no strict majority; on c2: other says tie -> disagree.
    assert figures[good.pk].agreement_with_majority == 0.0
    # other on c1: good a, bad b -> none; bad on c1: others a,a -> majority a, bad said b.
    assert figures[bad.pk].agreement_with_majority == 0.0
    assert figures[good.pk].median_time_ms == 1000

    assert quality.quality_refresh(campaign=campaign) == [bad.pk]
    assert set(Vote.objects.filter(excluded=True).values_list("annotator_id", flat=True)) == {bad.pk}
    assert Vote.objects.filter(annotator=bad).count() == 3, "excluded votes are kept"

    c = quality.campaign_figures(campaign=campaign)
    assert c["votes"] == 9 and c["excluded_votes"] == 3 and c["flagged_annotators"] == 1
    assert c["tie_share"] == pytest.approx(1 / 9) and c["irrelevant_share"] == pytest.approx(1 / 9)
    # Counted non-gold units: c1 [a, a], c2 [b, tie].
    assert c["pairwise_agreement"] == pytest.approx(0.5)
    assert c["units_with_2plus_votes"] == 2
    assert c["krippendorff_alpha"] == pytest.approx(
        quality.krippendorff_alpha_nominal({1: ["a", "a"], 2: ["b", "tie"]})
    )


@pytest.mark.django_db
def test_an_annotator_with_too_few_gold_votes_is_not_flagged(world):
    campaign = make_campaign(world, gold_min_votes=3)
    gold = Comparison.objects.filter(campaign=campaign).first()
    Comparison.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer="a")
    annotator = Annotator.objects.create(campaign=campaign, source="prolific", external_id_hash="x")
    _vote(annotator, gold, "b")
    assert quality.quality_refresh(campaign=campaign) == []
