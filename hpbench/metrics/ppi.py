"""Prediction-powered agreement: a model's agreement with people from few human labels plus a predictor.

Prediction-powered inference (Angelopoulos, Bates, Fannjiang, Jordan, Zrnic, *Science* 2023) estimates a mean
``θ = E[Y]`` from ``n`` labelled items ``(X, Y)`` and ``N`` items ``X̃`` where only a prediction ``f(X̃)`` is known:
``θ̂ = mean_N f(X̃) − mean_n (f(X) − Y)``. The second term (the *rectifier*) removes the predictor's bias on
average whatever its quality, so a poor predictor widens the interval but does not move its centre.
This module implements **PPI++** (Angelopoulos, Duchi, Zrnic 2023, "PPI++: Efficient prediction-powered
inference", the mean case) with a power-tuning factor ``λ``::

    θ̂_λ = λ · mean_N f(X̃) + mean_n (Y − λ f(X))
    Var  = λ² Var(f(X̃)) / N + Var(Y − λ f(X)) / n
    λ̂   = Cov(Y, f(X)) / ((1 + n / N) Var(f(X)))    clipped to [0, 1]

``λ = 1`` is the original PPI, ``λ = 0`` the classic estimate from the labels alone (so PPI++ is never
asymptotically worse than the classic one). The interval is normal: ``θ̂ ± z_{(1+level)/2} sqrt(Var)``.

For a CIR model's agreement (:mod:`hpbench.metrics.preference`): ``Y`` is the model's credit on a pair with a
human verdict (1 when its higher-scored set is the human's, 0 otherwise, 0.5 when it scores the sets equally);
``f`` is the expected credit under the preference model's probability ``p`` that people prefer set 1
(:func:`expected_credit`): ``p`` where the model picks set 1, ``1 − p`` where it picks set 2, 0.5 on a model tie.
The ``N`` term runs over every candidate pair (labelled or not).

**Non-uniform designs.** When the labelled pairs were drawn with unequal probabilities (informative pair selection,
:mod:`hpbench.metrics.adaptive`), ``weights`` (each labelled pair's design weight) turn the rectifier into the Hajek
mean ``Σ w (Y − λ f) / Σ w`` and its variance into the with-replacement approximation
``Σ w² (r − r̄)² / (Σ w)²`` (``r = Y − λ f``); ``λ̂`` uses weighted moments and the effective labelled count
``(Σ w)² / Σ w²``. This is the model-assisted difference estimator of survey sampling; with equal weights it is
exactly the formula above.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

#: Estimators a benchmark may use for its agreement column.
CLASSIC, PREDICTION_POWERED = "classic", "ppi"


@dataclass(frozen=True)
class PPIEstimate:
    """One prediction-powered estimate: value, normal interval, standard error, the λ used and the counts."""

    value: float
    lower: float
    upper: float
    se: float
    lam: float
    n_labelled: int
    n_candidates: int
    method: str = "PPI++ (power-tuned, λ clipped to [0, 1])"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected_credit(p_set1: ArrayLike, choices: ArrayLike) -> np.ndarray:
    """Expected agreement credit of a model's choices under ``p_set1`` (probability people prefer set 1).

    ``choices`` in {1, 2, 0 = model tie}; returns ``p`` where 1, ``1 − p`` where 2, 0.5 where 0. Raises
    ``ValueError`` on mismatched shapes, a probability outside [0, 1] or another choice code.
    """
    p = np.asarray(p_set1, dtype=np.float64)
    c = np.asarray(choices)
    if p.shape != c.shape:
        raise ValueError(f"p_set1 has shape {p.shape} but choices has shape {c.shape}")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("p_set1 must hold probabilities in [0, 1]")
    if c.size and not np.isin(c, (0, 1, 2)).all():
        raise ValueError("choices must be 1, 2 or 0 (tie)")
    return np.where(c == 1, p, np.where(c == 2, 1.0 - p, 0.5))


def credit(choices: ArrayLike, human: ArrayLike) -> np.ndarray:
    """A model's credit per pair against a human verdict in {1, 2}: 1 agree, 0 disagree, 0.5 model tie."""
    c, h = np.asarray(choices), np.asarray(human)
    if c.shape != h.shape:
        raise ValueError(f"choices has shape {c.shape} but human has shape {h.shape}")
    if h.size and not np.isin(h, (1, 2)).all():
        raise ValueError("human must be 1 or 2 (drop human ties before)")
    return np.where(c == 0, 0.5, (c == h).astype(np.float64))


def ppi_mean(
    y: ArrayLike,
    f_labelled: ArrayLike,
    f_all: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    level: float = 0.95,
    tuned: bool = True,
) -> PPIEstimate:
    """PPI++ estimate of ``E[Y]`` (see the module docstring) from labelled ``y``/``f_labelled`` and ``f_all``.

    ``weights`` (positive, one per labelled item) are design weights; ``tuned=False`` gives the original PPI
    (``λ = 1``). Raises ``ValueError`` on fewer than two labelled items, an empty ``f_all``, mismatched
    lengths, non-finite values, non-positive weights or a level not in (0, 1).
    """
    yl = np.asarray(y, dtype=np.float64)
    fl = np.asarray(f_labelled, dtype=np.float64)
    fa = np.asarray(f_all, dtype=np.float64)
    if yl.ndim != 1 or fl.shape != yl.shape:
        raise ValueError(f"y and f_labelled must be 1-D of the same length, got {yl.shape} and {fl.shape}")
    if fa.ndim != 1 or fa.size == 0:
        raise ValueError("f_all must be a non-empty 1-D array (every candidate's prediction)")
    if yl.size < 2:
        raise ValueError(f"need at least 2 labelled items, got {yl.size}")
    if not (np.isfinite(yl).all() and np.isfinite(fl).all() and np.isfinite(fa).all()):
        raise ValueError("y, f_labelled and f_all must be finite")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if weights is None:
        w = np.ones(yl.size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != yl.shape or not (np.isfinite(w).all() and (w > 0).all()):
            raise ValueError(f"weights must be positive and finite, one per labelled item ({yl.size})")
    w = w / w.sum()
    n_eff = 1.0 / float(np.sum(w * w))
    n_big = fa.size
    mean_f_all = float(fa.mean())
    var_f_all = float(fa.var())
    if tuned:
        my, mf = float(w @ yl), float(w @ fl)
        cov = float(w @ ((yl - my) * (fl - mf)))
        var_f = float(w @ ((fl - mf) ** 2))
        lam = cov / ((1.0 + n_eff / n_big) * var_f) if var_f > 0 else 0.0
        lam = min(1.0, max(0.0, lam))
    else:
        lam = 1.0
    r = yl - lam * fl
    r_bar = float(w @ r)
    value = lam * mean_f_all + r_bar
    var_rect = float(np.sum(w * w * (r - r_bar) ** 2))
    if weights is None:  # the unbiased sample variance, as the formula's Var(·)/n
        var_rect *= yl.size / (yl.size - 1)
    var = lam * lam * var_f_all / n_big + var_rect
    se = math.sqrt(max(var, 0.0))
    z = float(norm.ppf((1.0 + level) / 2.0))
    return PPIEstimate(value, value - z * se, value + z * se, se, lam, int(yl.size), int(n_big))


def ppi_agreement(
    choices_labelled: ArrayLike,
    human: ArrayLike,
    p_labelled: ArrayLike,
    choices_all: ArrayLike,
    p_all: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    level: float = 0.95,
    tuned: bool = True,
) -> PPIEstimate:
    """Prediction-powered agreement of one model.

    Labelled pairs: the model's ``choices_labelled`` (1/2/0), the human verdict ``human`` (1/2; ties dropped by
    the caller) and the preference model's cross-fitted ``p_labelled`` (set 1 preferred). Every candidate pair
    (labelled ones included): ``choices_all`` and ``p_all``. ``weights``: the labelled pairs' design weights.
    """
    y = credit(choices_labelled, human)
    f_lab = expected_credit(p_labelled, choices_labelled)
    f_all = expected_credit(p_all, choices_all)
    return ppi_mean(y, f_lab, f_all, weights=weights, level=level, tuned=tuned)
