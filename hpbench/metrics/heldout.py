"""Figures a reviewer can compare: agreement on pairs a model did not make, the human ceiling in the models'
units, and the preference ratio's chance level. Pure functions of a model's choices per pair
(:func:`hpbench.metrics.preference.model_choices`: 1 = set 1 scored higher, 2 = set 2, 0 = equal) and the pairs'
verdicts, votes, weights and makers.

- **Held-out agreement** (:func:`heldout_mask`, :func:`agreement_figures`). A campaign pair opposes sets made
  by models; a model's own top-k always outranks another set under its own scores, so on a pair where one set is
  its own it "agrees" exactly when people preferred its set: a win rate, not agreement. Held-out agreement is the
  model's agreement on the pairs where neither set is its own (``makers`` lists, per pair and set, every model
  whose top-k is that set). A model that made no set is scored on all pairs.
- **Leave-one-out ceiling** (:func:`loo_ceiling`, :func:`loo_model_agreement`). A unit is one vote on one pair
  whose other votes have a strict majority for set 1 or set 2 (their "leave-one-out majority"; a level top or a
  majority of tie votes is a human tie, left out as the agreement leaves human ties out). The ceiling is the
  share of units where the left-out vote is that majority (a tie vote counts ½, as a model tie does); a model's
  figure is the share of the same units where its choice is that majority. Both are ratios of sums over pairs
  (each unit weighted by its pair's weight), with percentile bootstrap intervals over pairs. Adaptive overlap
  (fewer votes where the first ones agree) raises the ceiling a little against fixed overlap on the same people
  (+0.03 on a crowd of half clear, half contested pairs; ``bench/heldout_ceiling.py``), far less than it moves
  two annotators' pooled agreement.
- **Chance level of the preference ratio** (:func:`preference_ratio_chance`). Under scores drawn independently
  at random each pair has ``P(score1 > score2) = ½``; given which ``k >= 1`` pairs the model scores 1 > 2, each
  subset of that size is equally likely, so the expected Eq. 9 ratio is ``p`` (the share of pairs whose human
  preferred set 1) for every ``k >= 1`` and ``0`` for ``k = 0`` (probability ``2^-n``): ``p (1 - 2^-n)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hpbench.metrics.preference import agreement_value, bootstrap_ci

#: Vote and choice codes (as :mod:`hpbench.metrics.preference`).
TIE, SET1, SET2 = 0, 1, 2


def heldout_mask(makers1: Sequence[Sequence[int]], makers2: Sequence[Sequence[int]], model_id: int) -> np.ndarray:
    """``(P,)`` booleans: ``True`` on the pairs where ``model_id`` made neither set (its held-out pairs)."""
    if len(makers1) != len(makers2):
        raise ValueError(f"makers1 has {len(makers1)} pairs but makers2 has {len(makers2)}")
    return np.array([model_id not in m1 and model_id not in m2 for m1, m2 in zip(makers1, makers2, strict=True)],
                    dtype=bool)


def _choice_scores(choices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in set scores with the same order as ``choices`` (what every agreement figure depends on)."""
    return (choices == SET1).astype(np.float64), (choices == SET2).astype(np.float64)


def _checked_choices(choices: ArrayLike, n: int, name: str = "choices") -> np.ndarray:
    c = np.asarray(choices)
    if c.shape != (n,):
        raise ValueError(f"{name} has shape {c.shape}, expected ({n},) (one per pair)")
    if c.size and not np.isin(c, (TIE, SET1, SET2)).all():
        raise ValueError(f"{name} must hold 0, 1 or 2")
    return c.astype(np.int8, copy=False)


def _finite(x: float | np.ndarray) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def agreement_figures(
    choices: ArrayLike, human: ArrayLike, *, weights: ArrayLike | None = None, mask: ArrayLike | None = None,
    rounds: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, Any]:
    """A model's agreement (:func:`hpbench.metrics.preference.agreement_value`) on the pairs where ``mask`` is
    true (default: all), with its percentile bootstrap interval over those pairs.

    ``weights``: per-pair selection weights (the weighted mean, as for informative selection); ``None`` = 1.
    Returns ``{"value", "lower", "upper", "n"}``: ``n`` is the number of those pairs with a human preference;
    the figures are ``None`` when ``n`` is 0.
    """
    h = np.asarray(human)
    c = _checked_choices(choices, h.shape[0] if h.ndim == 1 else -1)
    keep = np.ones(h.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != h.shape:
        raise ValueError(f"mask has shape {keep.shape}, expected {h.shape}")
    w = np.ones(h.shape, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != h.shape:
        raise ValueError(f"weights has shape {w.shape}, expected {h.shape}")
    s1, s2 = _choice_scores(c[keep])
    hk, wk = h[keep], w[keep]
    n = int(np.count_nonzero(hk != TIE))
    if n == 0:
        return {"value": None, "lower": None, "upper": None, "n": 0}
    value = agreement_value(s1, s2, hk, weights=wk)
    low, high = bootstrap_ci(lambda a, b, d, e: agreement_value(a, b, d, weights=e), s1, s2, hk, wk,
                             rounds=rounds, seed=seed, level=level)
    return {"value": _finite(value), "lower": _finite(low), "upper": _finite(high), "n": n}


def preference_ratio_chance(human: ArrayLike) -> float | None:
    """Expected preference ratio (QuRe Eq. 9) of scores drawn at random: ``p (1 - 2^-n)`` with ``p`` the share of
    the ``n`` pairs whose human preferred set 1 (human ties count as not set 1, as Eq. 9 counts them). ``None`` for
    no pairs."""
    h = np.asarray(human)
    n = int(h.size)
    if n == 0:
        return None
    return float(np.count_nonzero(h == SET1) / n * (1.0 - 2.0 ** (-n)))


def _majority(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Strict majority of vote counts: 1 or 2, else 0 (level at the top, or most votes are ties)."""
    return np.where((a > b) & (a > t), SET1, np.where((b > a) & (b > t), SET2, TIE))


def _vote_counts(votes_by_pair: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.zeros(len(votes_by_pair), dtype=np.int64)
    b, t = a.copy(), a.copy()
    for i, votes in enumerate(votes_by_pair):
        for v in votes:
            if v == SET1:
                a[i] += 1
            elif v == SET2:
                b[i] += 1
            elif v == TIE:
                t[i] += 1
            else:
                raise ValueError(f"pair {i}: vote {v!r} is not 1, 2 or 0 (tie)")
    return a, b, t


def loo_units(votes_by_pair: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Per pair: ``units`` (votes whose leave-one-out majority is set 1 or 2), ``to1``/``to2`` (how many of them
    have majority 1 / 2) and ``annotator`` (the left-out votes' credit summed: 1 when equal to the majority, ½ for
    a tie vote)."""
    a, b, t = _vote_counts(votes_by_pair)
    m_a = np.where(a > 0, _majority(a - 1, b, t), TIE)  # the majority a set-1 voter's others reach
    m_b = np.where(b > 0, _majority(a, b - 1, t), TIE)
    m_t = np.where(t > 0, _majority(a, b, t - 1), TIE)
    to1 = a * (m_a == SET1) + b * (m_b == SET1) + t * (m_t == SET1)
    to2 = a * (m_a == SET2) + b * (m_b == SET2) + t * (m_t == SET2)
    annotator = a * (m_a == SET1) + b * (m_b == SET2) + 0.5 * t * (m_t != TIE)
    return {"units": (to1 + to2).astype(np.float64), "to1": to1.astype(np.float64), "to2": to2.astype(np.float64),
            "annotator": annotator.astype(np.float64)}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    total = den.sum(axis=-1)
    return np.divide(num.sum(axis=-1), total, out=np.full(np.shape(total), np.nan), where=total > 0)


def _ratio_figures(num: np.ndarray, den: np.ndarray, *, rounds: int, seed: int, level: float) -> dict[str, Any]:
    pairs = int(np.count_nonzero(den > 0))
    if pairs == 0:
        return {"value": None, "lower": None, "upper": None, "pairs": 0, "units": 0.0}
    low, high = bootstrap_ci(_ratio, num, den, rounds=rounds, seed=seed, level=level)
    return {"value": _finite(_ratio(num, den)), "lower": _finite(low), "upper": _finite(high), "pairs": pairs,
            "units": float(den.sum())}


def loo_ceiling(
    votes_by_pair: Sequence[Sequence[int]], *, weights: ArrayLike | None = None, mask: ArrayLike | None = None,
    rounds: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, Any]:
    """The human ceiling in the models' units: each vote against the strict majority of the other votes on its
    pair (see the module docstring), over the pairs where ``mask`` is true (default: all).

    Returns ``{"value", "lower", "upper", "pairs": pairs with a unit, "units": weighted units}``; ``None``
    figures when no pair has a unit (e.g. one vote per pair).
    """
    u = loo_units(votes_by_pair)
    w, keep = _pair_weights(weights, mask, len(votes_by_pair))
    return _ratio_figures((u["annotator"] * w)[keep], (u["units"] * w)[keep], rounds=rounds, seed=seed, level=level)


def loo_model_agreement(
    choices: ArrayLike, votes_by_pair: Sequence[Sequence[int]], *, weights: ArrayLike | None = None,
    mask: ArrayLike | None = None, rounds: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, Any]:
    """A model's agreement with the same leave-one-out majorities as :func:`loo_ceiling` (its choice against each
    unit's majority; a model tie counts ½), same return shape."""
    c = _checked_choices(choices, len(votes_by_pair))
    u = loo_units(votes_by_pair)
    credit = np.where(c == SET1, u["to1"], np.where(c == SET2, u["to2"], 0.5 * u["units"]))
    w, keep = _pair_weights(weights, mask, len(votes_by_pair))
    return _ratio_figures((credit * w)[keep], (u["units"] * w)[keep], rounds=rounds, seed=seed, level=level)


def _pair_weights(weights: ArrayLike | None, mask: ArrayLike | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights, kept pairs) checked against ``n`` pairs; the bootstrap resamples the kept pairs only."""
    w = np.ones(n, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights has shape {w.shape}, expected ({n},)")
    keep = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != (n,):
        raise ValueError(f"mask has shape {keep.shape}, expected ({n},)")
    return w, keep
