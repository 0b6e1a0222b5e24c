"""Held-out agreement, the leave-one-out ceiling and the preference ratio's chance level, each against a computation
written here from its definition, and on simulated benchmarks where the truth is known."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from hpbench.metrics import heldout


def _agreement_by_hand(choices, human, weights, keep) -> float:
    total = n = 0.0
    for c, h, w, k in zip(choices, human, weights, keep, strict=True):
        if not k or h == 0:
            continue
        total += w * (0.5 if c == 0 else float(c == h))
        n += w
    return total / n


def _majority_by_hand(votes) -> int:
    """Strict majority of 1 / 2 / 0 (tie) votes; 0 when level at the top or no vote."""
    counts = Counter(votes)
    ranked = counts.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return 0
    return ranked[0][0]


def _loo_by_hand(votes_by_pair, choices=None, weights=None, keep=None) -> float | None:
    """Each vote against the majority of the others on its pair (a level or tie majority: not a unit); the vote
    (or, with ``choices``, the model's choice) earns 1 when it is that majority, ½ when it is a tie."""
    num = den = 0.0
    for i, votes in enumerate(votes_by_pair):
        if keep is not None and not keep[i]:
            continue
        w = 1.0 if weights is None else weights[i]
        for j in range(len(votes)):
            target = _majority_by_hand(votes[:j] + votes[j + 1:])
            if target == 0:
                continue
            judged = votes[j] if choices is None else choices[i]
            num += w * (0.5 if judged == 0 else float(judged == target))
            den += w
    return None if den == 0 else num / den


def test_held_out_agreement_matches_a_count_over_the_pairs_the_model_did_not_make():
    rng = np.random.default_rng(3)
    n = 400
    human = rng.choice([0, 1, 2], size=n, p=[0.1, 0.5, 0.4])
    choices = rng.choice([0, 1, 2], size=n, p=[0.05, 0.5, 0.45])
    weights = rng.uniform(0.5, 2.0, size=n)
    makers1 = [list(rng.choice(6, size=rng.integers(1, 3), replace=False)) for _ in range(n)]
    makers2 = [list(rng.choice(6, size=rng.integers(0, 3), replace=False)) for _ in range(n)]
    keep = [3 not in a and 3 not in b for a, b in zip(makers1, makers2, strict=True)]
    assert 0 < sum(keep) < n

    mask = heldout.heldout_mask(makers1, makers2, 3)
    assert list(mask) == keep
    figures = heldout.agreement_figures(choices, human, weights=weights, mask=mask, rounds=200)
    assert figures["value"] == pytest.approx(_agreement_by_hand(choices, human, weights, keep), abs=1e-12)
    assert figures["n"] == sum(k and h != 0 for k, h in zip(keep, human, strict=True))
    assert figures["lower"] < figures["value"] < figures["upper"]
    # A model that made no set is held out of nothing: its figure is the agreement on every pair.
    nobody = heldout.heldout_mask(makers1, makers2, 99)
    everyone = heldout.agreement_figures(choices, human, weights=weights, mask=nobody, rounds=50)
    assert everyone["value"] == pytest.approx(_agreement_by_hand(choices, human, weights, [True] * n), abs=1e-12)


def test_no_held_out_pair_gives_no_figure():
    figures = heldout.agreement_figures([1, 2], [1, 2], mask=[False, False])
    assert figures == {"value": None, "lower": None, "upper": None, "n": 0}


def _simulate_campaign(rng, *, n_pairs, makers, n_sets=8, beta=4.0, noise=None):
    """A campaign where the truth is known. Per query, ``n_sets`` candidate sets have a true quality; a model
    scores each set by its quality plus its own noise, and makes the set it scores highest (its top-k). A pair
    opposes the sets of two different makers; three people vote, each preferring set 1 with probability
    sigmoid(beta * (quality 1 - quality 2)); the verdict is their majority."""
    models = list(noise)
    quality = rng.normal(size=(n_pairs, n_sets))
    scores = {m: quality + noise[m] * rng.normal(size=(n_pairs, n_sets)) for m in models}
    own = {m: scores[m].argmax(axis=1) for m in makers}
    rows = []
    for i in range(n_pairs):
        a, b = rng.choice(makers, size=2, replace=False)
        s1, s2 = own[a][i], own[b][i]
        if s1 == s2:
            continue
        p = 1 / (1 + math.exp(-beta * (quality[i, s1] - quality[i, s2])))
        votes = [1 if rng.random() < p else 2 for _ in range(3)]
        makers1 = [m for m in makers if own[m][i] == s1]  # every maker whose top set is this set
        makers2 = [m for m in makers if own[m][i] == s2]
        choice = {m: 1 if scores[m][i, s1] > scores[m][i, s2] else 2 for m in models}
        rows.append((makers1, makers2, _majority_by_hand(votes), choice))
    return rows


def test_held_out_agreement_is_unbiased_where_all_pairs_agreement_is_biased_by_the_models_own_sets():
    rng = np.random.default_rng(11)
    noise = {"maker-a": 0.6, "maker-b": 0.9, "maker-c": 1.2, "pool-1": 0.8, "pool-2": 1.0, "new": 0.9}
    makers = ["maker-a", "maker-b", "maker-c", "pool-1", "pool-2"]  # the pool makes sets but is not on the board
    bench = _simulate_campaign(rng, n_pairs=4000, makers=makers, noise=noise)
    ids = {m: i for i, m in enumerate(noise)}
    makers1 = [[ids[m] for m in r[0]] for r in bench]
    makers2 = [[ids[m] for m in r[1]] for r in bench]
    human = np.array([r[2] for r in bench])

    # The truth: each model's agreement on many fresh pairs none of whose sets it made.
    fresh = _simulate_campaign(np.random.default_rng(12), n_pairs=40000, makers=makers, noise=noise)

    def truth(model: str) -> float:
        kept = [r for r in fresh if model not in r[0] and model not in r[1] and r[2] != 0]
        return float(np.mean([r[3][model] == r[2] for r in kept]))

    for model in ["maker-a", "maker-b", "maker-c", "new"]:
        choices = np.array([r[3][model] for r in bench])
        held = heldout.agreement_figures(choices, human, mask=heldout.heldout_mask(makers1, makers2, ids[model]),
                                         rounds=300)
        every = heldout.agreement_figures(choices, human, rounds=300)
        assert held["lower"] <= truth(model) <= held["upper"], (model, held, truth(model))
        if model == "new":  # made no set: held out of nothing
            assert held["n"] == every["n"] and held["value"] == pytest.approx(every["value"])
        else:  # its own top set always wins under its own scores: on its own pairs all pairs counts its set's wins
            assert held["n"] < every["n"]
            assert not every["lower"] <= truth(model) <= every["upper"], (model, every, truth(model))
            if model == "maker-a":  # the best maker's sets win more often than it agrees: inflated
                assert every["lower"] > truth(model)


def test_the_preference_ratio_of_random_scores_averages_the_share_of_pairs_preferring_set_1():
    def ratio(s1, s2, human):  # Eq. 9 from its definition
        chosen = [h for a, b, h in zip(s1, s2, human, strict=True) if a > b]
        return sum(h == 1 for h in chosen) / len(chosen) if chosen else 0.0

    human = [1, 2, 1, 0, 1, 2, 1]
    # Exactly: every order of the pairs' random scores is one of 2^n equally likely sets of "set 1 scored higher".
    exact = np.mean([ratio(mask, [0.5] * len(human), human)
                     for mask in itertools.product([0, 1], repeat=len(human))])
    assert heldout.preference_ratio_chance(human) == pytest.approx(exact, abs=1e-12)
    # And by simulation on a larger benchmark: its chance level is not 0.5.
    rng = np.random.default_rng(5)
    human = rng.choice([0, 1, 2], size=300, p=[0.1, 0.52, 0.38])
    draws = [ratio(rng.random(300), rng.random(300), human) for _ in range(3000)]
    chance = heldout.preference_ratio_chance(human)
    assert abs(chance - 0.5) > 0.02
    assert np.mean(draws) == pytest.approx(chance, abs=0.003)
    assert heldout.preference_ratio_chance([]) is None


def test_the_leave_one_out_ceiling_and_the_model_against_it_match_a_count_by_hand():
    rng = np.random.default_rng(8)
    votes = [list(rng.choice([0, 1, 2], size=rng.integers(0, 6), p=[0.15, 0.5, 0.35])) for _ in range(300)]
    choices = rng.choice([0, 1, 2], size=300, p=[0.05, 0.55, 0.4])
    weights = rng.uniform(0.5, 2, size=300)
    keep = rng.random(300) < 0.7

    ceiling = heldout.loo_ceiling(votes, weights=weights, mask=keep, rounds=200)
    assert ceiling["value"] == pytest.approx(_loo_by_hand(votes, weights=weights, keep=keep), abs=1e-12)
    assert ceiling["lower"] < ceiling["value"] < ceiling["upper"]
    model = heldout.loo_model_agreement(choices, votes, weights=weights, mask=keep, rounds=200)
    assert model["value"] == pytest.approx(_loo_by_hand(votes, choices, weights, keep), abs=1e-12)
    assert model["pairs"] == ceiling["pairs"]
    # One vote per pair (HP-FashionIQ): no unit, no ceiling.
    assert heldout.loo_ceiling([[1], [2]])["value"] is None


def _crowd(rng, n):
    """Half clear pairs (95% of people prefer one set), half contested ones (30-70%)."""
    return np.where(rng.random(n) < 0.5, rng.choice([0.05, 0.95], n), rng.uniform(0.3, 0.7, n))


def _collect(rng, n_pairs):
    """The same people in the same order, collected two ways: fixed overlap (three votes per pair) and adaptive
    overlap (stop once the majority is decided: 2 to 3 votes, the campaigns' defaults)."""
    from hpbench.metrics.adaptive import overlap_stop

    streams = [[1 if rng.random() < q else 2 for _ in range(3)] for q in _crowd(rng, n_pairs)]
    adaptive = []
    for stream in streams:
        taken: list[int] = []
        for vote in stream:
            taken.append(vote)
            if overlap_stop(taken.count(1), taken.count(2), min_votes=2, max_votes=3, confidence=0.8):
                break
        adaptive.append(taken)
    return streams, adaptive


def test_the_leave_one_out_ceiling_does_not_move_with_the_collection_strategy_beyond_its_interval():
    from hpbench.metrics.reliability import pairwise_agreement

    rng = np.random.default_rng(21)
    shifts, half_widths, old_shifts = [], [], []
    for _ in range(40):  # benchmarks of 300 pairs, the demo's size
        fixed, adaptive = _collect(rng, 300)
        assert sum(map(len, adaptive)) < sum(map(len, fixed))
        by_fixed, by_adaptive = heldout.loo_ceiling(fixed, rounds=200), heldout.loo_ceiling(adaptive, rounds=200)
        shifts.append(by_adaptive["value"] - by_fixed["value"])
        half_widths.append((by_fixed["upper"] - by_fixed["lower"]) / 2)
        old_shifts.append(pairwise_agreement(adaptive) - pairwise_agreement(fixed))
    # The leave-one-out ceiling moves less than its interval's half-width on average (measured: +0.032 against a
    # half-width of 0.035; no function of the final vote counts is unmoved by this stopping rule, and on a crowd
    # of mostly contested pairs it moves further: bench/heldout_ceiling.py) ...
    assert abs(np.mean(shifts)) < np.mean(half_widths), (np.mean(shifts), np.mean(half_widths))
    # ... where the old one (two annotators' agreement, pooled over pairs of votes) moves beyond it.
    assert abs(np.mean(old_shifts)) > 1.5 * np.mean(half_widths), (np.mean(old_shifts), np.mean(half_widths))
