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
        "with confidence 0.8) and informative pair selection (25% of pairs drawn uniformly at random), "
        "every figure (agreement, preference ratio, per category) a Hajek estimate weighting each pair by its "
        "Horvitz-Thompson design weight (1/π of the rounds' Poisson draws)."
    )
    page = client.get(reverse("leaderboard-board", args=[benchmark.name]))
    assert page.status_code == 200 and sentence.replace("'", "&#x27;") in page.content.decode()


def test_a_fixed_overlap_benchmark_page_says_nothing_of_it():
    campaign = make_campaign(make_world(n_queries=1, n_models=2), per_person_quota=0, votes_per_pair=1, min_vote_ms=0)
    person = crowd(campaign, "P0")
    vote_for(person, task_of(person, campaign).lease, "a")
    assert selectors.benchmark_collection_note(benchmark_freeze(campaign=campaign).benchmark) == ""


def _weighted_figures_by_definition(set1, set2, human, weights):
    """Agreement and QuRe Eq. 9 written out from their definitions, each pair counting its weight."""
    agree_num = agree_den = ratio_num = ratio_den = 0.0
    for s1, s2, h, w in zip(set1, set2, human, weights, strict=True):
        model = 1 if s1 > s2 else 2 if s2 > s1 else 0
        if h != 0:
            agree_den += w
            agree_num += w * (0.5 if model == 0 else float(model == h))
        if model == 1:  # Eq. 9 conditions on the model scoring set 1 higher
            ratio_den += w
            ratio_num += w * (h == 1)
    return agree_num / agree_den, (ratio_num / ratio_den if ratio_den else 0.0)


def test_every_figure_of_a_weighted_benchmark_is_weighted_overall_and_per_category():
    import random

    from hpbench.catalog.models import Dataset, Image, ModelEntry
    from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store

    dataset = Dataset.objects.create(name="weighted", kind=Dataset.Kind.DEMO, image_root="/tmp")
    images = {c: Image.objects.create(dataset=dataset, name=f"ref-{c}", category=c, split="val", file_path="x.png")
              for c in ("dress", "shirt")}
    rng = random.Random(5)
    categories = [("dress", "shirt")[i % 2] for i in range(24)]
    human = [rng.choice([1, 1, 2, 0]) for _ in categories]
    weights = [round(rng.uniform(0.2, 4.0), 3) for _ in categories]
    set1 = [rng.random() for _ in categories]
    set2 = [s if i % 7 == 0 else rng.random() for i, s in enumerate(set1)]  # some model ties
    benchmark = benchmark_store(
        name="weighted", source="campaign", dataset=dataset,
        pairs=[PairSpec(reference_id=images[c].pk, text="t", set1=(1,), set2=(2,), preference=h, selection_weight=w)
               for c, h, w in zip(categories, human, weights, strict=True)],
    ).benchmark
    model = ModelEntry.objects.create(name="m-weighted", family="clip_zeroshot")
    stored = model_score_store(score_id=ModelScore.objects.create(model=model, benchmark=benchmark).pk,
                               set1=set1, set2=set2)
    agreement, ratio = _weighted_figures_by_definition(set1, set2, human, weights)
    assert stored.agreement == pytest.approx(agreement) and stored.preference_ratio == pytest.approx(ratio)
    assert stored.preference_ratio_low <= stored.preference_ratio <= stored.preference_ratio_high
    for category in ("dress", "shirt"):
        keep = [i for i, c in enumerate(categories) if c == category]
        agreement, ratio = _weighted_figures_by_definition(
            *([seq[i] for i in keep] for seq in (set1, set2, human, weights))
        )
        figures = stored.by_category[category]
        assert figures["agreement"] == pytest.approx(agreement)
        assert figures["preference_ratio"] == pytest.approx(ratio)
        assert figures["n_pairs"] == len(keep)
    # The unweighted figures differ: the weights reach every figure.
    plain_agreement, plain_ratio = _weighted_figures_by_definition(set1, set2, human, [1.0] * len(human))
    assert abs(plain_ratio - stored.preference_ratio) > 1e-3 and abs(plain_agreement - stored.agreement) > 1e-3


def test_the_pairs_and_comparisons_export_their_inclusion_probability_round_weight_and_stop_reason():
    from hpbench.exports.selectors.comparisons import comparison_rows
    from hpbench.exports.selectors.pairs import pair_rows
    from hpbench.exports.selectors.params import params_parse

    campaign = make_campaign(
        make_world(n_queries=3, n_models=3), per_person_quota=0, pair_selection="informative", num_queries=4,
        **ADAPTIVE,
    )
    people = [crowd(campaign, f"P{i}") for i in range(3)]
    for person in people:
        while (task := task_of(person, campaign)) is not None:
            vote_for(person, task.lease, "a")
    stored = {
        f"comparison:{c.pk}": c for c in Comparison.objects.filter(campaign=campaign, is_gold=False)
    }
    benchmark = benchmark_freeze(campaign=campaign).benchmark
    rows = [r for chunk in pair_rows(params_parse(benchmark=benchmark.name)) for r in chunk]
    assert len(rows) == len(stored) >= 1
    for row in rows:
        c = stored[row["source_key"]]
        assert (row["selection_round"], row["selection_pi"], row["selection_weight"]) == (
            1, c.selection_pi, c.selection_weight)
        assert row["stop_reason"] == "decided" and row["campaign_votes"] == 2
    by_id = {r["comparison_id"]: r for chunk in comparison_rows(params_parse(campaigns=[campaign.slug],
                                                                             level="comparisons")) for r in chunk}
    for c in stored.values():
        assert (by_id[c.pk]["selection_pi"], by_id[c.pk]["selection_weight"], by_id[c.pk]["stop_reason"]) == (
            c.selection_pi, c.selection_weight, "decided")
