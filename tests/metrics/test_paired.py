"""Paired differences, McNemar tests, Holm correction and ranks, against computations written here from their
definitions (loops over pairs, scipy's binomtest), and on simulated benchmarks where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hpbench.metrics.paired import difference_interval, paired_comparisons


def _credit(choice: np.ndarray, human: np.ndarray) -> np.ndarray:
    """1 when the model prefers the human's set, 0.5 for a model tie, 0 otherwise (pairs with a human preference)."""
    return np.where(choice == 0, 0.5, np.where(choice == human, 1.0, 0.0))


def _shared(i: int, j: int, human: np.ndarray, usable: np.ndarray | None) -> np.ndarray:
    keep = human != 0
    if usable is not None:
        keep = keep & usable[i] & usable[j]
    return keep


def _holm_by_hand(p: dict[tuple[int, int], float]) -> dict[tuple[int, int], float]:
    keys = sorted(p, key=lambda k: p[k])
    m, running, out = len(keys), 0.0, {}
    for step, key in enumerate(keys):
        running = max(running, min(1.0, (m - step) * p[key]))
        out[key] = running
    return out


def _random_benchmark(seed: int, models: int = 5, pairs: int = 400, ties: bool = True):
    rng = np.random.default_rng(seed)
    human = rng.choice([0, 1, 2], size=pairs, p=[0.1, 0.45, 0.45])
    skill = rng.uniform(0.4, 0.8, models)
    right = rng.random((models, pairs)) < skill[:, None]
    choices = np.where(right, human, 3 - human)
    choices = np.where(human == 0, rng.integers(1, 3, (models, pairs)), choices)
    if ties:
        choices = np.where(rng.random((models, pairs)) < 0.05, 0, choices)
    usable = rng.random((models, pairs)) < 0.85
    return choices.astype(np.int8), human.astype(np.int8), usable


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_differences_exact_mcnemar_holm_and_ranks_match_their_definitions(seed) -> None:
    choices, human, usable = _random_benchmark(seed)
    result = paired_comparisons(choices, human, usable=usable)
    m = choices.shape[0]
    raw: dict[tuple[int, int], float] = {}
    for i in range(m):
        for j in range(m):
            keep = _shared(i, j, human, usable)
            x = _credit(choices[i], human)[keep] - _credit(choices[j], human)[keep]
            assert result.n[i, j] == keep.sum()
            assert result.difference[i, j] == pytest.approx(x.mean())
            if i < j:
                b, c = int((x > 0).sum()), int((x < 0).sum())
                raw[(i, j)] = stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
                assert result.p_value[i, j] == pytest.approx(raw[(i, j)]) == result.p_value[j, i]
    holm = _holm_by_hand(raw)
    for (i, j), p in holm.items():
        assert result.p_holm[i, j] == pytest.approx(p)
    better = np.zeros(m, dtype=int)
    for (i, j), p in holm.items():
        if p < 0.05:
            better[j if result.difference[i, j] > 0 else i] += 1
    assert result.rank.tolist() == (1 + better).tolist()


def test_weighted_differences_and_wald_tests_match_their_definitions() -> None:
    choices, human, usable = _random_benchmark(3, models=4, pairs=300)
    weights = np.random.default_rng(3).uniform(0.5, 4.0, human.size)
    result = paired_comparisons(choices, human, usable=usable, weights=weights)
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            keep = _shared(i, j, human, usable)
            x = _credit(choices[i], human)[keep] - _credit(choices[j], human)[keep]
            w = weights[keep]
            d = np.sum(w * x) / np.sum(w)
            se = np.sqrt(keep.sum() / (keep.sum() - 1) * np.sum(w**2 * (x - d) ** 2)) / np.sum(w)
            assert result.difference[i, j] == pytest.approx(d, abs=1e-6)
            assert result.p_value[i, j] == pytest.approx(2 * stats.norm.sf(abs(d) / se), abs=1e-5)
            low, high = difference_interval(result, i, j)
            assert (low, high) == pytest.approx((d - 1.959964 * se, d + 1.959964 * se), abs=1e-5)


def test_the_paired_bootstrap_interval_is_the_one_resampling_shared_pairs_gives() -> None:
    choices, human, usable = _random_benchmark(4, models=2, pairs=500)
    result = paired_comparisons(choices, human, usable=usable)
    keep = _shared(0, 1, human, usable)
    x = _credit(choices[0], human)[keep] - _credit(choices[1], human)[keep]
    rng = np.random.default_rng(99)
    by_hand = np.quantile(x[rng.integers(0, x.size, (20000, x.size))].mean(axis=1), [0.025, 0.975])
    low, high = difference_interval(result, 0, 1, rounds=20000)
    assert (low, high) == pytest.approx(tuple(by_hand), abs=0.004)  # Monte Carlo error of the two estimates
    assert difference_interval(result, 0, 1) == difference_interval(result, 0, 1)  # seeded


def test_models_sharing_no_pair_are_not_compared() -> None:
    human = np.array([1, 2, 1, 2], dtype=np.int8)
    choices = np.array([[1, 2, 1, 2], [2, 1, 2, 1]], dtype=np.int8)
    usable = np.array([[True, True, False, False], [False, False, True, True]])
    result = paired_comparisons(choices, human, usable=usable)
    assert result.n[0, 1] == 0 and np.isnan(result.difference[0, 1]) and result.p_value[0, 1] == 1.0
    assert result.rank.tolist() == [1, 1]
    assert np.isnan(difference_interval(result, 0, 1)).all()


def test_bad_input_is_refused_with_where_it_is() -> None:
    human = np.array([1, 2], dtype=np.int8)
    with pytest.raises(ValueError, match=r"choices\[1\]\[0\] = 3"):
        paired_comparisons(np.array([[1, 2], [3, 1]]), human)
    with pytest.raises(ValueError, match=r"human\[1\] = 5"):
        paired_comparisons(np.array([[1, 2]]), np.array([1, 5]))
    with pytest.raises(ValueError, match="usable must be a boolean array of shape"):
        paired_comparisons(np.array([[1, 2]]), human, usable=np.ones((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="weights"):
        paired_comparisons(np.array([[1, 2]]), human, weights=[1.0, 0.0])


def _correlated_models(rng: np.random.Generator, pairs: int, accuracy: tuple[float, float], shared: float):
    """Two models on the same pairs: with probability ``shared`` a pair is easy or hard for both (they answer
    alike), else each answers on its own; marginal accuracies are ``accuracy`` (the truth)."""
    human = rng.integers(1, 3, pairs)
    common = rng.random(pairs)
    alike = rng.random(pairs) < shared
    right = np.empty((2, pairs), dtype=bool)
    for k, a in enumerate(accuracy):
        right[k] = np.where(alike, common < a, rng.random(pairs) < a)
    return np.where(right, human, 3 - human).astype(np.int8), human.astype(np.int8)


def _overlap_ranks(choices: np.ndarray, human: np.ndarray, rng: np.random.Generator) -> list[int]:
    """The rule this replaces: rank = 1 + models whose 95% agreement interval lies wholly above this one's."""
    credit = np.stack([_credit(c, human) for c in choices])
    idx = rng.integers(0, human.size, (2000, human.size))
    low, high = np.quantile(credit[:, idx].mean(axis=2), [0.025, 0.975], axis=1)
    return [1 + int(np.sum(low > high[k])) for k in range(choices.shape[0])]


def test_paired_ranks_find_a_real_difference_that_interval_overlap_misses() -> None:
    """Truth: model 0 agrees with people on 70% of pairs, model 1 on 67%, on the same 1,500 pairs; the two share
    most of their answers (as models of one family do). Each agreement interval is about ±0.023 wide, so they
    overlap; the paired difference's noise cancels on the shared answers and the test sees the 0.03."""
    rng = np.random.default_rng(2026)
    found_paired = found_overlap = 0
    for _ in range(40):
        choices, human = _correlated_models(rng, 1500, (0.70, 0.67), shared=0.85)
        result = paired_comparisons(choices, human)
        found_paired += result.rank.tolist() == [1, 2]
        found_overlap += _overlap_ranks(choices, human, rng) == [1, 2]
    assert found_paired >= 36  # power well above 90% (39 of 40 with this seed)
    assert found_overlap <= 4  # overlap rarely separates them (1 of 40 with this seed)


def test_equal_models_share_rank_one_at_the_stated_family_wise_error() -> None:
    """Eight models of equal accuracy (no real difference): with Holm over the 28 model pairs, a run where any
    model is ranked below another is a false discovery; it happens in at most about 5% of runs."""
    rng = np.random.default_rng(7)
    runs, false = 200, 0
    for _ in range(runs):
        human = rng.integers(1, 3, 400)
        right = rng.random((8, 400)) < 0.65
        choices = np.where(right, human, 3 - human).astype(np.int8)
        false += paired_comparisons(choices, human.astype(np.int8)).rank.max() > 1
    assert false / runs <= 0.08
