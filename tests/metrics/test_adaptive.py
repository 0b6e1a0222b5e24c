"""Rules for fewer votes (hpbench/metrics/adaptive.py) and weighted agreement (hpbench/metrics/preference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hpbench.metrics.adaptive import (
    bt_strengths,
    informative_draw,
    overlap_stop,
    poisson_probabilities,
    score_evidence,
    selection_probabilities,
    sequential_weights,
    weighted_agreement,
)
from hpbench.metrics.preference import agreement_value


def test_two_of_two_stop_and_a_split_asks_to_the_maximum():
    rule = {"min_votes": 2, "max_votes": 3, "confidence": 0.8}
    assert overlap_stop(1, 0, **rule) is None
    assert overlap_stop(2, 0, **rule) == "decided"
    assert overlap_stop(1, 1, **rule) is None
    assert overlap_stop(2, 1, **rule) == "max_votes"


def test_weighted_agreement_equals_a_hand_computation():
    # Scores: pair 0 model says set 1, pair 1 set 2, pair 2 a model tie (0.5), pair 3 human tie (left out).
    s1, s2 = [0.9, 0.1, 0.5, 0.7], [0.2, 0.8, 0.5, 0.1]
    human = [1, 1, 2, 0]
    w = [2.0, 0.5, 1.0, 3.0]
    # credits 1, 0, 0.5 with weights 2, 0.5, 1 -> (2 + 0 + 0.5) / 3.5
    assert agreement_value(s1, s2, human, weights=w) == pytest.approx(2.5 / 3.5)
    assert agreement_value(s1, s2, human, weights=[1, 1, 1, 1]) == agreement_value(s1, s2, human)
    prefers_a = np.array([[True], [False], [True]])
    assert weighted_agreement(prefers_a, [True, True, False], [2.0, 0.5, 1.0])[0] == pytest.approx(2 / 3.5)


def test_poisson_probabilities_are_capped_at_one_and_sum_to_the_requested_count():
    pi = poisson_probabilities([0.5, 0.3, 0.1, 0.1], 2)
    # c * 0.5 would pass 1: that one is certain, c = 1 / 0.5 over the rest -> 0.6, 0.2, 0.2.
    assert pi == pytest.approx([1.0, 0.6, 0.2, 0.2])
    assert poisson_probabilities([1.0, 1.0], 5) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        poisson_probabilities([0.0, 1.0], 1)


def test_an_informative_draw_is_a_poisson_round_with_its_probabilities():
    p = np.array([0.5, 0.9, 0.99, 0.5])
    d = np.zeros(4)
    expected = poisson_probabilities(selection_probabilities(p, d, random_share=0.25), 2)
    picks, pi = informative_draw(p, d, take=2, random_share=0.25, rng=np.random.default_rng(1))
    assert pi == pytest.approx(expected[picks])
    again, _ = informative_draw(p, d, take=2, random_share=0.25, rng=np.random.default_rng(1))
    assert list(picks) == list(again)
    counts = np.zeros(4)
    rng = np.random.default_rng(2)
    for _ in range(4000):
        counts[informative_draw(p, d, take=2, random_share=0.25, rng=rng)[0]] += 1
    assert counts / 4000 == pytest.approx(expected, abs=0.03)  # each drawn with its π, independently
    everything, pi_all = informative_draw(p, d, take=4, random_share=1.0, rng=np.random.default_rng(1))
    assert list(everything) == [0, 1, 2, 3] and pi_all == pytest.approx([1.0] * 4)


def test_sequential_weights_follow_the_definition():
    # Independent computation from the module's definition: N = 10, rounds of 2 and 3 expected draws.
    big_n, sizes = 10, [2.0, 3.0]
    n = sum(sizes)
    pools = [10.0, 8.0]  # N_r = N - earlier sizes
    a = [(big_n / n) * (1 - (big_n - n) / pools[0]), (big_n / n) * (1 - (big_n - n) / pools[1]), 0.0]
    assert a[0] == pytest.approx(1.0)
    alpha = [a[0] - a[1], a[1] - a[2]]
    round_of, pi = [1, 1, 2, 2, 2], [0.5, 0.1, 0.3, 0.6, 0.2]
    hand = [(alpha[r - 1] / q + a[r]) * n / big_n for r, q in zip(round_of, pi, strict=True)]
    assert sequential_weights(population=big_n, round_sizes=sizes, round_of=round_of, pi=pi) == pytest.approx(hand)
    # Uniform rounds (π = n_r / N_r) give every drawn candidate weight 1.
    uniform_pi = [0.2, 0.2, 3 / 8, 3 / 8, 3 / 8]
    uniform = sequential_weights(population=10, round_sizes=sizes, round_of=round_of, pi=uniform_pi)
    assert uniform == pytest.approx([1.0] * 5)
    with pytest.raises(ValueError, match="rounds"):
        sequential_weights(population=10, round_sizes=sizes, round_of=[3], pi=[0.5])


def _campaign_estimates(plan: list[int], y: np.ndarray, x: np.ndarray, rng: np.random.Generator, *, today: bool):
    """One simulated campaign: a build and refreshes of ``plan`` expected sizes over N candidates whose selection
    priority rises with ``x`` (so with the truth ``y``) and, after the build, with what the drawn pairs showed.
    Returns the weighted (Hajek) mean of ``y`` over the drawn candidates, and (new design only) the HT total."""
    big_n = y.size
    drawn = np.zeros(big_n, dtype=bool)
    picked, pis, rounds, sizes, weights_today = [], [], [], [], []
    for r, take in enumerate(plan, start=1):
        pool = np.flatnonzero(~drawn)
        seen = y[drawn].mean() if drawn.any() else 0.5  # adaptive: the evidence so far moves the priorities
        p_pref, disagreement = 0.5 * x[pool], 3 * seen * x[pool]
        if today:  # what earlier versions did: `take` drawn without replacement, weight 1 / (π_single N_pool)
            pi = selection_probabilities(p_pref, disagreement, random_share=0.25)
            picks = rng.choice(pool.size, size=take, replace=False, p=pi)
            weights_today.extend(1 / (pi[picks] * pool.size))
        else:
            picks, pi_drawn = informative_draw(p_pref, disagreement, take=take, random_share=0.25, rng=rng)
            pis.extend(pi_drawn)
            rounds.extend([r] * picks.size)
            sizes.append(min(take, pool.size))
        picked.extend(pool[picks])
        drawn[pool[picks]] = True
    idx = np.asarray(picked)
    if today:
        w = np.asarray(weights_today)
        return float((w * y[idx]).sum() / w.sum()), float("nan")
    w = sequential_weights(population=big_n, round_sizes=sizes, round_of=rounds, pi=pis)
    return float((w * y[idx]).sum() / w.sum()), float((w * y[idx]).sum() * big_n / sum(sizes))


@pytest.mark.parametrize("plan", [[250, 250], [500, 500, 500]], ids=["25% coverage", "75% coverage"])
def test_the_weighted_estimate_is_unbiased_after_a_build_and_refreshes_where_single_draw_weights_are_not(plan):
    world = np.random.default_rng(0)
    x = world.random(2000)
    y = (world.random(2000) < x).astype(np.float64)  # e.g. "the model agrees with the verdict", known here
    truth = y.mean()
    reps = 1500
    rng = np.random.default_rng(1)
    new = np.array([_campaign_estimates(plan, y, x, rng, today=False) for _ in range(reps)])
    old = np.array([_campaign_estimates(plan, y, x, rng, today=True)[0] for _ in range(reps)])
    se_new, se_old = new[:, 0].std() / np.sqrt(reps), old.std() / np.sqrt(reps)
    assert abs(new[:, 0].mean() - truth) < 4 * se_new  # Hajek mean: unbiased within Monte Carlo error
    total_se = new[:, 1].std() / np.sqrt(reps)
    assert abs(new[:, 1].mean() - y.sum()) < 4 * total_se  # Horvitz-Thompson total: unbiased
    assert abs(old.mean() - truth) > 8 * se_old  # today's weights are biased


def test_score_evidence_standardises_each_scorer_and_reads_its_preferences():
    gap, prefers = score_evidence([[1.0, -1.0], [2.0, 2.0]])
    assert gap == pytest.approx([1.5, 0.5])  # (1 + 2) / 2, (-1 + 2) / 2; a constant scorer's std counts as 1
    assert prefers.tolist() == [[True, True], [False, True]]


def test_bradley_terry_strengths_from_votes_match_the_odds_and_ignore_how_rows_are_split():
    # Model 0 beat model 1 in 3 of 4 votes: strengths differ by about ln 3 (a light ridge shrinks it a little).
    one = bt_strengths([0], [1], [3], [4], 2)
    split = bt_strengths([0, 0, 1], [1, 1, 0], [2, 1, 0], [2, 2, 0], 2)
    assert one[0] - one[1] == pytest.approx(np.log(3), abs=0.05)
    assert split == pytest.approx(one)
    assert bt_strengths([], [], [], [], 3).tolist() == [0.0, 0.0, 0.0]
