"""The preference model: symmetric, cross-fitted (a pair's own label never reaches its prediction), and its
held-out figures against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models_zoo.preference.evaluate import heldout_report
from models_zoo.preference.features import pair_features
from models_zoo.preference.model import cross_fit, fit, folds_by_group, predict


def _world(seed=0, n=600, k=4, m=3):
    rng = np.random.default_rng(seed)
    gap = rng.normal(0, 1, n)
    choices = np.where(gap[None, :] + rng.normal(0, [[0.5], [1.0], [2.0], [3.0]][:k], (k, n)) > 0, 1, 2)
    human_set1 = rng.random(n) < 1 / (1 + np.exp(-2 * gap))
    makers = rng.integers(0, m, (2, n))
    return choices, human_set1, makers, m


def test_features_negate_when_the_sets_swap():
    x = pair_features(np.array([[1, 2, 0]]), np.array([0, 1, -1]), np.array([1, 0, 1]), 2)
    swapped = pair_features(np.array([[2, 1, 0]]), np.array([1, 0, 1]), np.array([0, 1, -1]), 2)
    assert x.tolist() == [[1, 1, -1], [-1, -1, 1], [0, 0, -1]]
    assert (swapped == -x).all()
    with pytest.raises(ValueError, match="choices"):
        pair_features(np.array([[3]]), np.array([0]), np.array([1]), 2)


def test_the_fit_is_symmetric_and_learns_the_better_scorer():
    choices, human, makers, m = _world()
    x = pair_features(choices, makers[0], makers[1], m)
    beta = fit(x, human)
    assert predict(beta, -x) == pytest.approx(1 - predict(beta, x))
    assert beta[0] > beta[3]  # the least noisy scorer weighs more than the noisiest


def test_cross_fitting_never_uses_a_pairs_own_label():
    choices, human, makers, m = _world(1, n=200)
    x = pair_features(choices, makers[0], makers[1], m)
    folds = folds_by_group(np.arange(200) // 2, 5)  # two pairs per query, in one fold
    assert all((folds[q * 2] == folds[q * 2 + 1]) for q in range(100))
    p = cross_fit(x, human, folds)
    flipped = human.copy()
    held = folds == 0
    flipped[held] = ~flipped[held]
    p2 = cross_fit(x, flipped, folds)
    assert p2[held] == pytest.approx(p[held])  # fold 0's labels reached none of fold 0's predictions
    assert not np.allclose(p2[~held], p[~held])


def test_heldout_report_matches_a_direct_computation():
    p = np.array([0.9, 0.2, 0.6, 0.5, 0.3, 0.7])
    human = np.array([True, False, False, True, False, True])
    folds = np.array([0, 0, 0, 1, 1, 1])
    a = np.array([1, 2, 1, 1, 1, 0])
    report = heldout_report(p, human, {"a": a}, folds, rounds=200)
    # preference model: picks 1, 2, 1, tie, 2, 1 -> credits 1, 1, 0, 0.5, 1, 1
    assert report["preference_model"]["agreement"]["value"] == pytest.approx(4.5 / 6)
    ll = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.5) + math.log(0.7) + math.log(0.7)) / 6
    assert report["preference_model"]["log_loss"]["value"] == pytest.approx(ll)
    # model a: credits 1, 1, 0, 1, 0, 0.5; calibrated on the other fold: fold 0 from fold 1's picks (1/2 agree),
    # fold 1 from fold 0's picks (2/3 agree)
    assert report["models"]["a"]["agreement"]["value"] == pytest.approx(3.5 / 6)
    ll_a = -(math.log(0.5) + math.log(0.5) + math.log(0.5) + math.log(2 / 3) + math.log(1 / 3) + math.log(0.5)) / 6
    assert report["models"]["a"]["log_loss"]["value"] == pytest.approx(ll_a)
    assert report["best_model"] == "a"
    assert report["margin_over_best"]["value"] == pytest.approx(1 / 6)
    lo, hi = report["preference_model"]["agreement"]["lower"], report["preference_model"]["agreement"]["upper"]
    assert lo <= 4.5 / 6 <= hi


def test_the_numpy_fit_reaches_the_torch_fits_optimum():
    from models_zoo.preference.model import fit_newton

    choices, human, makers, m = _world(2)
    x = pair_features(choices, makers[0], makers[1], m)
    assert fit_newton(x, human) == pytest.approx(fit(x, human), abs=1e-5)
