"""Prediction-powered agreement against the formula written out here, and its coverage on simulated data."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from hpbench.metrics.ppi import credit, expected_credit, ppi_agreement, ppi_mean


def _ppi_by_hand(y, f_lab, f_all, lam):
    """θ̂ = λ mean(f_all) + mean(y − λ f_lab); Var = λ² Var(f_all)/N + s²(y − λ f_lab)/n (sample variance)."""
    n, big_n = len(y), len(f_all)
    mean_all = sum(f_all) / big_n
    var_all = sum((v - mean_all) ** 2 for v in f_all) / big_n
    rect = [a - lam * b for a, b in zip(y, f_lab, strict=True)]
    value = lam * mean_all + sum(rect) / n
    var = lam * lam * var_all / big_n + statistics.variance(rect) / n
    return value, math.sqrt(var)


def test_expected_credit_and_credit_follow_the_model_choice():
    assert expected_credit([0.8, 0.8, 0.8], [1, 2, 0]).tolist() == pytest.approx([0.8, 0.2, 0.5])
    assert credit([1, 2, 0, 1], [1, 1, 2, 2]).tolist() == [1.0, 0.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="probabilities"):
        expected_credit([1.2], [1])
    with pytest.raises(ValueError, match="human"):
        credit([1], [0])


def test_untuned_ppi_is_the_original_formula():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 40).astype(float)
    f_lab = rng.random(40)
    f_all = rng.random(500)
    est = ppi_mean(y, f_lab, f_all, tuned=False)
    value, se = _ppi_by_hand(y.tolist(), f_lab.tolist(), f_all.tolist(), 1.0)
    assert est.lam == 1.0
    assert est.value == pytest.approx(value, abs=1e-12)
    assert est.se == pytest.approx(se, abs=1e-12)
    assert est.lower == pytest.approx(value - 1.959963984540054 * se, abs=1e-9)
    assert est.upper == pytest.approx(value + 1.959963984540054 * se, abs=1e-9)


def test_tuned_ppi_uses_the_ppi_plus_plus_lambda():
    rng = np.random.default_rng(4)
    f_all = rng.random(300)
    f_lab = rng.random(60)
    y = (rng.random(60) < 0.3 + 0.4 * f_lab).astype(float)  # a weak predictor: λ strictly inside (0, 1)
    n, big_n = 60, 300
    my, mf = sum(y) / n, sum(f_lab) / n
    cov = sum((a - my) * (b - mf) for a, b in zip(y, f_lab, strict=True)) / n
    var_f = sum((b - mf) ** 2 for b in f_lab) / n
    lam = min(1.0, max(0.0, cov / ((1 + n / big_n) * var_f)))
    assert 0.0 < lam < 1.0
    est = ppi_mean(y, f_lab, f_all)
    value, se = _ppi_by_hand(y.tolist(), f_lab.tolist(), f_all.tolist(), lam)
    assert est.lam == pytest.approx(lam, abs=1e-12)
    assert est.value == pytest.approx(value, abs=1e-12)
    assert est.se == pytest.approx(se, abs=1e-12)


def test_agreement_composes_credit_and_expected_credit():
    choices_lab = np.array([1, 2, 1, 0, 2, 1])
    human = np.array([1, 2, 2, 1, 1, 1])
    p_lab = np.array([0.9, 0.3, 0.6, 0.5, 0.4, 0.7])
    choices_all = np.array([1, 2, 1, 0, 2, 1, 2, 2, 1, 1])
    p_all = np.array([0.9, 0.3, 0.6, 0.5, 0.4, 0.7, 0.1, 0.8, 0.5, 0.95])
    y = [1, 1, 0, 0.5, 0, 1]
    f_lab = [0.9, 0.7, 0.6, 0.5, 0.6, 0.7]
    f_all = f_lab + [0.9, 0.2, 0.5, 0.95]
    value, se = _ppi_by_hand(y, f_lab, f_all, 1.0)
    est = ppi_agreement(choices_lab, human, p_lab, choices_all, p_all, tuned=False)
    assert est.value == pytest.approx(value, abs=1e-12)
    assert est.se == pytest.approx(se, abs=1e-12)


def test_weights_give_the_hajek_rectifier():
    y = np.array([1.0, 0.0, 1.0, 1.0])
    f_lab = np.array([0.8, 0.3, 0.6, 0.9])
    f_all = np.array([0.8, 0.3, 0.6, 0.9, 0.5, 0.2])
    w = np.array([1.0, 2.0, 1.0, 4.0])
    est = ppi_mean(y, f_lab, f_all, weights=w, tuned=False)
    r = y - f_lab
    r_bar = float((w * r).sum() / w.sum())
    var = f_all.var() / 6 + float((w**2 * (r - r_bar) ** 2).sum() / w.sum() ** 2)
    assert est.value == pytest.approx(f_all.mean() + r_bar, abs=1e-12)
    assert est.se == pytest.approx(math.sqrt(var), abs=1e-12)


def test_it_rejects_bad_input_naming_it():
    with pytest.raises(ValueError, match="at least 2 labelled"):
        ppi_mean([1.0], [0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="weights"):
        ppi_mean([1.0, 0.0], [0.5, 0.5], [0.5], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="f_all"):
        ppi_mean([1.0, 0.0], [0.5, 0.5], [])


def _coverage(predictor: str, *, weighted: bool, reps: int = 400) -> tuple[float, float]:
    """Share of 95% intervals covering the population agreement; mean interval width."""
    rng = np.random.default_rng(11 if weighted else 7)
    big_n, n = 4000, 200
    covered, widths = 0, []
    for _ in range(reps):
        p_true = rng.beta(2, 2, big_n)  # P(people prefer set 1) per candidate
        choice = np.where(rng.random(big_n) < 0.5 + 0.3 * (p_true - 0.5) * 2, 1, 2)  # the model leans right
        human = np.where(rng.random(big_n) < p_true, 1, 2)
        truth = float(credit(choice, human).mean())
        if predictor == "good":
            p_hat = np.clip(p_true + rng.normal(0, 0.05, big_n), 0, 1)
        else:  # no information, and biased
            p_hat = np.clip(rng.random(big_n) * 0.4 + 0.6, 0, 1)
        if weighted:  # Poisson draw with π ∝ predicted uncertainty
            u = np.sqrt(p_hat * (1 - p_hat)) + 0.05
            pi = np.minimum(1.0, n * u / u.sum())
            lab = np.flatnonzero(rng.random(big_n) < pi)
            w = 1.0 / pi[lab]
        else:
            lab = rng.choice(big_n, n, replace=False)
            w = None
        est = ppi_agreement(choice[lab], human[lab], p_hat[lab], choice, p_hat, weights=w)
        covered += est.lower <= truth <= est.upper
        widths.append(est.upper - est.lower)
    return covered / reps, float(np.mean(widths))


@pytest.mark.parametrize("weighted", [False, True])
def test_intervals_cover_with_a_good_and_a_poor_predictor(weighted):
    good_cov, good_width = _coverage("good", weighted=weighted)
    poor_cov, poor_width = _coverage("poor", weighted=weighted)
    assert good_cov >= 0.93
    assert poor_cov >= 0.93
    assert good_width < poor_width  # a good predictor buys width, a poor one costs it but not truth
