"""Benchmarks frozen from campaigns built adaptively: what each pair records, weighted scores, the page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.models import Comparison
from hpbench.leaderboard import selectors
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import benchmark_freeze
from hpbench.leaderboard.services.scores import model_score_store
from tests.annotate.conftest import make_campaign, make_world
from tests.annotate.test_adaptive import ADAPTIVE, crowd, task_of, vote_for

pytestmark = pytest.mark.django_db


def test_the_frozen_benchmark_records_votes_stop_reason_weights_and_settings():
    campaign = make_campaign(make_world(n_queries=1, n_models=2), per_person_quota=0, **ADAPTIVE)
    people = [crowd(campaign, f"P{i}") for i in range(3)]
    for person, side in zip(people, "abb", strict=True):
        vote_for(person, task_of(person, campaign).lease, side)
    Comparison.objects.filter(campaign=campaign).update(selection_weight=1.5)
    result = benchmark_freeze(campaign=campaign)
    (pair,) = result.benchmark.pairs.all()
    assert (pair.n_votes, pair.stop_reason, pair.selection_weight, pair.preference) == (3, "max_votes", 1.5, 2)
    assert result.benchmark.report["collection"] == {
        "adaptive_overlap": True, "min_votes_per_pair": 2, "votes_per_pair": 3, "overlap_confidence": 0.8,
        "pair_selection": "random", "random_share": 0.25,
    }


def test_scores_of_a_weighted_benchmark_use_the_weights_and_unit_weights_change_nothing():
    # min_vote_ms 0: these votes come at once, and a too-fast vote counts in no benchmark.
    campaign = make_campaign(make_world(n_queries=3, n_models=2), per_person_quota=0, votes_per_pair=1, min_vote_ms=0)
    person = crowd(campaign, "P0")
    while (task := task_of(person, campaign)) is not None:
        vote_for(person, task.lease, "a")
    benchmark = benchmark_freeze(campaign=campaign).benchmark
    pairs = list(benchmark.pairs.order_by("position"))
    model = campaign.models.first()
    plain = ModelScore.objects.create(model=model, benchmark=benchmark)
    # The model agrees on pairs 0 and 1 (set 1 higher), not on pair 2.
    set1, set2 = [0.9, 0.8, 0.1], [0.1, 0.2, 0.7]
    assert model_score_store(score_id=plain.pk, set1=set1, set2=set2).agreement == pytest.approx(2 / 3)
    for pair, weight in zip(pairs, [1.0, 1.0, 2.0], strict=True):
        pair.selection_weight = weight
        pair.save(update_fields=["selection_weight"])
    other = campaign.models.last()
    weighted = ModelScore.objects.create(model=other, benchmark=benchmark)
    stored = model_score_store(score_id=weighted.pk, set1=set1, set2=set2)
    assert stored.agreement == pytest.approx(2 / 4)  # (1 + 1 + 0) / (1 + 1 + 2)
    assert stored.agreement_low <= stored.agreement <= stored.agreement_high


def test_the_leaderboard_page_of_an_adaptive_benchmark_says_how_votes_were_collected(client):
    campaign = make_campaign(
        make_world(n_queries=1, n_models=2), per_person_quota=0, pair_selection="informative", num_queries=1,
        **ADAPTIVE,
    )
    people = [crowd(campaign, f"P{i}") for i in range(2)]
    for person in people:
        vote_for(person, task_of(person, campaign).lease, "a")
    benchmark = benchmark_freeze(campaign=campaign).benchmark
    sentence = selectors.benchmark_collection_note(benchmark)
    assert sentence == (
        "Votes were collected with adaptive overlap (2 to 3 votes per pair, stopping once the majority is decided "
        "with confidence 0.8) and informative pair selection (25% of pairs drawn uniformly at random), agreement "
        "weighted by each pair's inverse selection probability."
    )
    page = client.get(reverse("leaderboard-board", args=[benchmark.name]))
    assert page.status_code == 200 and sentence.replace("'", "&#x27;") in page.content.decode()


def test_a_fixed_overlap_benchmark_page_says_nothing_of_it():
    campaign = make_campaign(make_world(n_queries=1, n_models=2), per_person_quota=0, votes_per_pair=1, min_vote_ms=0)
    person = crowd(campaign, "P0")
    vote_for(person, task_of(person, campaign).lease, "a")
    assert selectors.benchmark_collection_note(benchmark_freeze(campaign=campaign).benchmark) == ""
