"""The preference model: symmetric, cross-fitted (a pair's own label never reaches its prediction), and its
held-out figures against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models_zoo.preference.evaluate import heldout_report
from models_zoo.preference.features import gap_features, gap_scale, pair_features, reference_shown
from models_zoo.preference.model import choose_l2, cross_fit, fit, fit_newton, folds_by_group, predict


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


def test_the_gap_scale_is_each_models_rms_over_every_block():
    gaps = np.array([[0.5, -2.0, 1.5], [-1.0, -3.0, 0.0]])
    extra = np.array([[4.0], [0.0]])  # an unlabelled block shares the scale
    scale = gap_scale(gaps, extra)
    assert scale == pytest.approx([math.sqrt((0.25 + 4 + 2.25 + 16) / 4), math.sqrt((1 + 9) / 4)])
    assert gap_scale(np.zeros((2, 3)))[0] == 1.0  # a model whose gaps are all 0 keeps its zeros


def test_gap_features_are_the_scaled_gaps_then_the_reference_and_negate():
    gaps = np.array([[0.5, -2.0], [1.0, 0.0]])
    x = gap_features(gaps, np.array([1, 0]))
    assert x.tolist() == [[0.5, 1.0, 1.0], [-2.0, 0.0, 0.0]]
    assert (gap_features(-gaps, np.array([-1, 0])) == -x).all()
    assert gap_features(gaps).shape == (2, 2)
    with pytest.raises(ValueError, match="reference"):
        gap_features(gaps, np.array([1, 0, 0]))
    with pytest.raises(ValueError, match="finite"):
        gap_features(gaps * np.inf)


def test_the_reference_column_is_last_and_negates():
    assert [reference_shown(7, (7, 1), (2,)), reference_shown(7, (1,), (7,)), reference_shown(7, (7,), (7,)),
            reference_shown(None, (7,), ())] == [1, -1, 0, 0]
    x = pair_features(np.array([[1, 2]]), np.array([0, 1]), np.array([1, 0]), 2, reference=np.array([1, -1]))
    assert x[:, -1].tolist() == [1, -1]
    with pytest.raises(ValueError, match="reference"):
        pair_features(np.array([[1, 2]]), np.array([0, 1]), np.array([1, 0]), 2, reference=np.array([2, 0]))


def test_the_nested_l2_choice_is_the_grids_best_cross_validated_log_loss():
    """On few noisy pairs with many useless features a strong penalty wins; on many clean pairs a weak one; and
    the pick is the grid value whose held-out log-loss, computed here directly, is lowest."""
    rng = np.random.default_rng(5)
    few = rng.normal(0, 1, (40, 12))
    y_few = rng.random(40) < 1 / (1 + np.exp(-0.3 * few[:, 0]))
    folds = np.arange(40) % 4
    grid = (0.3, 3.0, 100.0)
    picked = choose_l2(few, y_few, folds, grid=grid)

    def cv_loss(l2):
        total = 0.0
        for f in range(4):
            q = predict(fit_newton(few[folds != f], y_few[folds != f], l2=l2), few[folds == f])
            total -= np.sum(np.where(y_few[folds == f], np.log(q), np.log(1 - q)))
        return total

    assert picked == min(grid, key=cv_loss) == 100.0
    many = rng.normal(0, 1, (4000, 2))
    y_many = rng.random(4000) < 1 / (1 + np.exp(-4 * many[:, 0]))
    assert choose_l2(many, y_many, np.arange(4000) % 4, grid=grid) == 0.3
    assert choose_l2(few, y_few, np.zeros(40)) == 1.0  # one fold: nothing to validate on


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
    gain = report["log_loss_gain_over_best"]
    assert gain["value"] == pytest.approx(ll_a - ll) and gain["lower"] <= gain["value"] <= gain["upper"]
    lo, hi = report["preference_model"]["agreement"]["lower"], report["preference_model"]["agreement"]["upper"]
    assert lo <= 4.5 / 6 <= hi


def test_the_numpy_fit_reaches_the_torch_fits_optimum():
    from models_zoo.preference.model import fit_newton

    choices, human, makers, m = _world(2)
    x = pair_features(choices, makers[0], makers[1], m)
    assert fit_newton(x, human) == pytest.approx(fit(x, human), abs=1e-5)
