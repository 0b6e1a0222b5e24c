"""Scores, freezing and arena ratings, through the leaderboard's services."""

from __future__ import annotations

import json
import math
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from hpbench.catalog.models import ModelEntry, Query
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from hpbench.leaderboard.selectors import arena_for_benchmark
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_freeze, benchmark_import_hpfiq, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(fiq_dataset):
    from tests.leaderboard.conftest import make_images

    return make_images(fiq_dataset, {f"img{i}": "shirt" for i in range(12)})


@pytest.fixture
def model(db):
    return ModelEntry.objects.create(name="m1", family="demo")


def _benchmark(dataset, images, prefs, *, votes=None) -> PreferenceBenchmark:
    ids = list(images.values())
    pairs = [
        PairSpec(reference_id=ids[0], text=f"q{i}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]), preference=p,
                 votes=tuple(votes[i]) if votes else ())
        for i, p in enumerate(prefs)
    ]
    return benchmark_store(name="hand", source="imported", dataset=dataset, pairs=pairs).benchmark


def test_scores_match_a_hand_computed_case(fiq_dataset, images, model):
    benchmark = _benchmark(fiq_dataset, images, [1, 2, 1, 0, 2])
    score = ModelScore.objects.create(model=model, benchmark=benchmark)
    # Model prefers: 1, 2, tie, 2, 1.  Eq. 9: pairs with s1 > s2 are #0 and #4; the human chose set 1 in #0 only.
    stored = model_score_store(score_id=score.pk, set1=[3, 1, 2, 2, 5], set2=[1, 2, 2, 4, 0])
    assert stored.preference_ratio == pytest.approx(0.5)
    # Agreement over the 4 pairs with a human preference: 1 + 1 + 0.5 (model tie) + 0 = 2.5 / 4.
    assert stored.agreement == pytest.approx(0.625)
    assert (stored.n_pairs, stored.n_human_ties, stored.n_model_ties) == (5, 1, 1)
    assert stored.status == "finished" and stored.progress == 1.0
    assert stored.agreement_low <= stored.agreement <= stored.agreement_high
    assert stored.preference_ratio_low <= stored.preference_ratio <= stored.preference_ratio_high
    assert stored.agreement_low < stored.agreement_high  # 5 pairs: the interval is wide
    # The model's choice per pair is kept (1 = set 1 scored higher, 2 = set 2, 0 = equal), in position order.
    assert list(stored.choices()) == [1, 2, 0, 2, 1]


def test_bootstrap_intervals_are_reproducible_and_collapse_when_every_pair_agrees(fiq_dataset, images, model):
    benchmark = _benchmark(fiq_dataset, images, [1, 2, 1, 2])
    score = ModelScore.objects.create(model=model, benchmark=benchmark)
    first = model_score_store(score_id=score.pk, set1=[1, 0, 1, 0], set2=[0, 1, 0, 1])
    assert (first.agreement_low, first.agreement, first.agreement_high) == (1.0, 1.0, 1.0)
    again = model_score_store(score_id=score.pk, set1=[1, 0, 1, 3], set2=[0, 1, 0, 1])
    figures = (again.agreement_low, again.agreement_high)
    assert model_score_store(score_id=score.pk, set1=[1, 0, 1, 3], set2=[0, 1, 0, 1]).agreement_low == figures[0]


def test_a_wrong_number_of_set_scores_is_refused(fiq_dataset, images, model):
    benchmark = _benchmark(fiq_dataset, images, [1, 2])
    score = ModelScore.objects.create(model=model, benchmark=benchmark)
    with pytest.raises(ValueError, match="3 set scores for 2 pairs"):
        model_score_store(score_id=score.pk, set1=[1, 2, 3], set2=[1, 2, 3])


def test_preference_ratio_on_the_real_file_matches_a_direct_count(fiq_with_hpfiq_images, hpfiq_path, model):
    """A scorer that ranks set 1 higher exactly when its Likert score is higher: the expected Eq. 9 ratio and
    agreement are counted straight from the raw JSON."""
    benchmark = benchmark_import_hpfiq(path=hpfiq_path, dataset=fiq_with_hpfiq_images).benchmark
    likert = list(benchmark.pairs.order_by("position").values_list("likert1", "likert2"))
    score = ModelScore.objects.create(model=model, benchmark=benchmark)
    stored = model_score_store(score_id=score.pk, set1=[a for a, _ in likert], set2=[b for _, b in likert])

    higher = preferred = credit = n = 0
    for user in json.loads(hpfiq_path.read_text()).values():
        for block in user.values():
            sets = zip(block["retrieved_set1"], block["retrieved_set2"], block["preferred set"], strict=True)
            for s1, s2, p in sets:
                l1, l2 = int(s1["user_score"]), int(s2["user_score"])
                n += 1
                if l1 > l2:
                    higher += 1
                    preferred += p == "1"
                credit += 0.5 if l1 == l2 else float((l1 > l2) == (p == "1"))
    assert n == 3050 and higher > 0
    assert stored.preference_ratio == pytest.approx(preferred / higher, abs=1e-12)
    assert stored.agreement == pytest.approx(credit / n, abs=1e-12)
    assert stored.n_model_ties == 774 and stored.n_human_ties == 0
    assert stored.agreement_low < stored.agreement < stored.agreement_high


# --- freezing a campaign ---------------------------------------------------------------------


@pytest.fixture
def campaign_setup(fiq_dataset, images):
    from annotate.models import Annotator, Campaign, Comparison

    ids = list(images.values())
    query = Query.objects.create(dataset=fiq_dataset, key="q0", split="val", reference_id=ids[0], captions=["x"])
    m1 = ModelEntry.objects.create(name="alpha", family="demo")
    m2 = ModelEntry.objects.create(name="beta", family="demo")
    campaign = Campaign.objects.create(slug="c1", name="c1", dataset=fiq_dataset)

    def comparison(n: int, *, gold: bool = False):
        q = query if n == 0 else Query.objects.create(
            dataset=fiq_dataset, key=f"q{n}", split="val", reference_id=ids[n % 12], captions=["x"])
        return Comparison.objects.create(
            campaign=campaign, query=q, reference_image_id=q.reference_id, text=f"text {n}", position=n,
            set_a_images=[ids[1], ids[2]], set_b_images=[ids[3], ids[4]], set_a_model=m1, set_b_model=m2,
            is_gold=gold, open_slots=0,
        )

    annotators = [Annotator.objects.create(campaign=campaign, source="account") for _ in range(4)]
    return campaign, comparison, annotators, (m1, m2)


def _vote(comparison, annotator, choice, *, irrelevant=False, excluded=False, ratings=(None, None)):
    from annotate.models import Assignment, Vote

    assignment = Assignment.objects.create(
        campaign=comparison.campaign, annotator=annotator, comparison=comparison, left_is_a=True,
        state="submitted", expires_at=timezone.now() + timedelta(minutes=5),
    )
    return Vote.objects.create(
        assignment=assignment, comparison=comparison, annotator=annotator, choice=choice, irrelevant=irrelevant,
        excluded=excluded, rating_a=ratings[0], rating_b=ratings[1], idempotency_key=uuid.uuid4().hex,
    )


def test_freezing_follows_the_majority_and_leaves_out_excluded_flagged_gold_and_irrelevant(campaign_setup):
    campaign, comparison, (x, y, z, w), _ = campaign_setup
    c0, c1, c2, c3, gold = comparison(0), comparison(1), comparison(2), comparison(3), comparison(4, gold=True)
    _vote(c0, x, "a", ratings=(4, 2)), _vote(c0, y, "a", ratings=(5, 3)), _vote(c0, z, "b", ratings=(1, 5))
    # c1: b wins only because z's excluded vote and w's (flagged annotator) votes are left out.
    _vote(c1, x, "b"), _vote(c1, y, "b"), _vote(c1, z, "a", excluded=True), _vote(c1, w, "a")
    w.flagged = True
    w.save(update_fields=["flagged"])
    # c2: the majority says both sets are irrelevant -> dropped.
    _vote(c2, x, "a", irrelevant=True), _vote(c2, y, "b", irrelevant=True), _vote(c2, z, "a")
    # c3: level at the top -> a tie.
    _vote(c3, x, "a"), _vote(c3, y, "b")
    _vote(gold, x, "a"), _vote(gold, y, "a")

    kept = benchmark_freeze(campaign=campaign, tie_policy="keep-as-tie")
    pairs = list(kept.benchmark.pairs.order_by("position"))
    assert [p.source_key for p in pairs] == [f"comparison:{c0.pk}", f"comparison:{c1.pk}", f"comparison:{c3.pk}"]
    assert [p.preference for p in pairs] == [1, 2, 0]
    assert pairs[0].likert1 == pytest.approx(10 / 3) and pairs[0].likert2 == pytest.approx(10 / 3)
    assert len(pairs[1].votes) == 2 and pairs[0].text == "text 0"
    assert kept.report["dropped"] == {"no_votes": 0, "both_irrelevant": 1, "tie": 0}
    # Human ceiling: c0 has 1 agreeing pair of 3, c1 1 of 1, c3 0 of 1 -> 2 / 5.
    assert kept.benchmark.human_agreement == pytest.approx(2 / 5)
    assert kept.benchmark.human_alpha is not None

    dropped = benchmark_freeze(campaign=campaign, tie_policy="drop", name="c1-strict")
    assert [p.preference for p in dropped.benchmark.pairs.order_by("position")] == [1, 2]
    assert dropped.report["dropped"]["tie"] == 1


def test_freezing_is_idempotent_and_new_votes_make_a_new_version(campaign_setup):
    campaign, comparison, (x, y, z, _), _ = campaign_setup
    c0 = comparison(0)
    _vote(c0, x, "a"), _vote(c0, y, "a")
    first = benchmark_freeze(campaign=campaign)
    again = benchmark_freeze(campaign=campaign)
    assert first.created and not again.created and again.benchmark.pk == first.benchmark.pk
    _vote(c0, z, "b")
    third = benchmark_freeze(campaign=campaign)
    assert third.created and third.benchmark.version == 2 and third.benchmark.is_active
    first.benchmark.refresh_from_db()
    assert not first.benchmark.is_active


def test_a_bad_tie_policy_is_refused(campaign_setup):
    with pytest.raises(ValueError, match="tie policy 'maybe'"):
        benchmark_freeze(campaign=campaign_setup[0], tie_policy="maybe")


def test_arena_ratings_come_from_votes_between_different_models(campaign_setup):
    from hpbench.metrics import arena

    campaign, comparison, annotators, (m1, m2) = campaign_setup
    for n in range(3):
        c = comparison(n)
        for annotator, choice in zip(annotators[:3], ["a", "a", "b"] if n < 2 else ["b", "tie", "b"], strict=False):
            _vote(c, annotator, choice)
    benchmark = benchmark_freeze(campaign=campaign).benchmark
    rows = arena_for_benchmark(benchmark=benchmark)
    # Direct computation from the same 9 games with the metrics module.
    games = (["a", "a", "b"] * 2) + ["b", "tie", "b"]
    # The bootstrap resamples the three comparisons (their votes together), not the nine votes one by one.
    expected = arena.arena_ratings([str(m1.pk)] * 9, [str(m2.pk)] * 9, games, clusters=[0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert [r["model_id"] for r in rows] == [int(r["model"]) for r in expected]
    for key in ("rating", "lower", "upper"):
        assert [r[key] for r in rows] == pytest.approx([r[key] for r in expected])
    assert [r["votes"] for r in rows] == [9, 9]
    # 4.5 wins of 9 each: equal ratings around 1000.
    assert rows[0]["rating"] == pytest.approx(1000, abs=1e-3) and not math.isnan(rows[0]["lower"])
    assert np.isclose(rows[0]["rating"], rows[1]["rating"])
