"""How well a model's scores agree with human preferences between two retrieved sets (QuRe, ICML 2025).

A judged pair is (query, set 1 of images, set 2 of images, the human's choice). A model scores each set
(:func:`set_scores`, the paper's Eq. 8) and so "prefers" the set it scores higher.

- :func:`preference_ratio` is the paper's Eq. 9 exactly as its released ``HP_FashionIQ/evaluate.py``
  (``evaluate_preference_ratio``) computes it: among pairs where the model scores set 1 strictly higher than
  set 2, the fraction where the human preferred set 1; ``0.0`` when there is no such pair. It looks at one
  order only: a pair the model scores 2 > 1 never counts, whatever the human said.
- :func:`agreement` is hpbench's symmetric headline: over pairs where the human preferred one set, the
  fraction where the model's higher-scored set is that set; a model tie counts 0.5; human ties are left out
  and counted. ``nan`` (``None`` in JSON summaries) when no pair has a human preference.
- :func:`bootstrap_ci` gives percentile intervals by resampling pairs with replacement.

Statistics are vectorised: arrays may carry leading axes (e.g. bootstrap rounds) and every statistic reduces
over the last axis only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

#: Human preference codes used by :func:`agreement`.
HUMAN_TIE, HUMAN_SET1, HUMAN_SET2 = 0, 1, 2

#: At most this many resampled values are held at once by :func:`bootstrap_ci` (per array).
_BOOTSTRAP_BLOCK = 1 << 22


def set_scores(relevance: ArrayLike | Sequence[ArrayLike]) -> np.ndarray:
    """Set score per pair (paper Eq. 8): the mean over a set's images of the model's relevance to the query.

    ``relevance`` is ``(P, S)`` (P sets of S images each) or a sequence of P 1-D arrays of any lengths.
    Returns ``(P,)`` float64. Raises ``ValueError`` for an empty set or a non-finite relevance.
    """
    if isinstance(relevance, np.ndarray) and relevance.ndim == 2:
        arr = relevance.astype(np.float64, copy=False)
        if arr.shape[1] == 0:
            raise ValueError("set_scores: sets must hold at least one image")
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"set_scores: relevance[{bad[0][0]}][{bad[0][1]}] is not finite")
        return arr.mean(axis=1)
    rows = list(cast("Sequence[ArrayLike]", relevance))
    out = np.empty(len(rows), dtype=np.float64)
    for i, row in enumerate(rows):
        r = np.asarray(row, dtype=np.float64)
        if r.ndim != 1 or r.size == 0:
            raise ValueError(f"set_scores: set {i} must be a non-empty 1-D list of relevances, got shape {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError(f"set_scores: set {i} has a non-finite relevance")
        out[i] = r.mean()
    return out


def model_choices(score1: ArrayLike, score2: ArrayLike) -> np.ndarray:
    """The set a model prefers per pair, in the human codes: 1 where ``score1 > score2``, 2 where
    ``score2 > score1``, 0 (tie) where they are equal. ``int8``, same shape as the inputs.

    Every figure of this module depends on a model's scores only through these choices, so a model's
    figures on any subset of pairs (held-out pairs, one category) can be recomputed from them alone.
    """
    s1, s2 = _pair_arrays(score1, score2, names=("score1", "score2"))
    return np.where(s1 > s2, HUMAN_SET1, np.where(s2 > s1, HUMAN_SET2, HUMAN_TIE)).astype(np.int8)


def _pair_arrays(*arrays: ArrayLike, names: Sequence[str]) -> list[np.ndarray]:
    out = [np.asarray(a) for a in arrays]
    shape = out[0].shape
    for name, a in zip(names, out, strict=True):
        if a.shape != shape:
            raise ValueError(f"{names[0]} has shape {shape} but {name} has shape {a.shape}")
    return out


def preference_ratio(
    score1: ArrayLike, score2: ArrayLike, human_pref_is_1: ArrayLike, *, weights: ArrayLike | None = None
) -> float | np.ndarray:
    """Paper Eq. 9: among pairs with ``score1 > score2``, the fraction whose human preferred set 1.

    ``human_pref_is_1`` is boolean (a human tie or a preference for set 2 is ``False``, as the released code
    counts only ``preferred set == '1'``). Returns ``0.0`` where no pair has ``score1 > score2``. 1-D inputs
    give a ``float``; inputs with leading axes give an array over those axes.

    With ``weights`` (each pair's design weight, :mod:`hpbench.metrics.adaptive`) the weighted Eq. 9:
    ``Σ w 1[s1 > s2] 1[human 1] / Σ w 1[s1 > s2]``, the Hajek estimate of the ratio over every candidate
    pair (the ratio of two Horvitz-Thompson totals); equal weights give the plain ratio.
    """
    s1, s2, h = _pair_arrays(score1, score2, human_pref_is_1, names=("score1", "score2", "human_pref_is_1"))
    if h.dtype != bool:
        if h.size and not np.isin(h, (0, 1)).all():
            raise ValueError("human_pref_is_1 must be boolean (or 0/1)")
        h = h.astype(bool)
    model_1 = s1 > s2
    if weights is not None:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), h.shape)
        conditioned = np.sum(np.where(model_1, w, 0.0), axis=-1)
        preferred = np.sum(np.where(model_1 & h, w, 0.0), axis=-1)
    else:
        conditioned = np.count_nonzero(model_1, axis=-1)
        preferred = np.count_nonzero(model_1 & h, axis=-1)
    ratio = np.divide(
        preferred, conditioned, out=np.zeros(np.shape(conditioned), dtype=np.float64), where=conditioned > 0
    )
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def _check_human(human: np.ndarray) -> np.ndarray:
    if human.size:
        bad = ~np.isin(human, (HUMAN_TIE, HUMAN_SET1, HUMAN_SET2))
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            where = pos[0] if len(pos) == 1 else pos
            raise ValueError(f"human[{where}] = {human[pos].item()!r}: expected 1, 2 or 0 (tie)")
    return human.astype(np.int8, copy=False)


def agreement_value(
    score1: ArrayLike, score2: ArrayLike, human: ArrayLike, *, weights: ArrayLike | None = None
) -> float | np.ndarray:
    """Agreement over pairs with a human preference (``human`` in {1, 2}; 0 = tie, excluded).

    Each such pair counts 1 when the model's higher-scored set is the human's, 0.5 when the model scores the
    two sets equally, 0 otherwise; the result is the mean, or with ``weights`` (same shape, positive: each
    pair's selection weight 1/π) the weighted mean. ``nan`` where no pair has a human preference.
    Vectorised like :func:`preference_ratio`.
    """
    s1, s2, h = _pair_arrays(score1, score2, human, names=("score1", "score2", "human"))
    h = _check_human(h)
    decided = h != HUMAN_TIE
    model = np.where(s1 > s2, HUMAN_SET1, np.where(s2 > s1, HUMAN_SET2, HUMAN_TIE))
    credit = np.where(model == HUMAN_TIE, 0.5, (model == h).astype(np.float64))
    if weights is not None:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), h.shape)
        total = np.sum(np.where(decided, credit * w, 0.0), axis=-1)
        n = np.sum(np.where(decided, w, 0.0), axis=-1)
        value = np.divide(total, n, out=np.full(np.shape(n), np.nan), where=n > 0)
        return float(value) if np.ndim(value) == 0 else value
    total = np.sum(np.where(decided, credit, 0.0), axis=-1)
    n = np.count_nonzero(decided, axis=-1)
    value = np.divide(total, n, out=np.full(np.shape(n), np.nan), where=n > 0)
    return float(value) if np.ndim(value) == 0 else value


def agreement(score1: ArrayLike, score2: ArrayLike, human: ArrayLike) -> dict[str, Any]:
    """Agreement of a model with human choices, with its counts (1-D inputs).

    Returns ``{"agreement": float | None, "pairs": n pairs with a human preference, "human_ties": n pairs
    the human called a tie (excluded), "model_ties": n of the counted pairs the model scored equally
    (0.5 each)}``. ``agreement`` is ``None`` when ``pairs`` is 0.
    """
    s1, s2, h = _pair_arrays(score1, score2, human, names=("score1", "score2", "human"))
    if s1.ndim != 1:
        raise ValueError(f"agreement takes 1-D arrays, got shape {s1.shape}; use agreement_value for batches")
    h = _check_human(h)
    value = agreement_value(s1, s2, h)
    decided = h != HUMAN_TIE
    return {
        "agreement": None if math.isnan(value) else value,
        "pairs": int(np.count_nonzero(decided)),
        "human_ties": int(np.count_nonzero(~decided)),
        "model_ties": int(np.count_nonzero(decided & (s1 == s2))),
    }


def bootstrap_ci(
    statistic: Callable[..., float | np.ndarray],
    *arrays: ArrayLike,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over pairs resampled with replacement.

    ``arrays`` are aligned per pair (same length ``n``). Each round draws ``n`` pair indices uniformly
    with replacement (``numpy.random.default_rng(seed)``; one ``(rounds, n)`` index matrix, built in
    blocks to bound memory) and evaluates ``statistic(*resampled)`` with every array of shape
    ``(block, n)``; the statistic must reduce over the last axis and return ``(block,)`` (the functions
    of this module do). Returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (linear
    interpolation), ignoring rounds where the statistic is ``nan``; ``(nan, nan)`` if every round is.
    Deterministic for a given seed. Raises ``ValueError`` for no arrays, no pairs, mismatched lengths,
    ``rounds < 1`` or a level not in (0, 1).
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    data = [np.asarray(a) for a in arrays]
    n = data[0].shape[0] if data[0].ndim else 0
    for i, a in enumerate(data):
        if a.ndim != 1 or a.shape[0] != n:
            raise ValueError(f"array {i} has shape {a.shape}; all arrays must be 1-D of the same length")
    if n == 0:
        raise ValueError("bootstrap_ci needs at least one pair")
    rng = np.random.default_rng(seed)
    block = max(1, min(rounds, _BOOTSTRAP_BLOCK // n))
    values = np.empty(rounds, dtype=np.float64)
    for start in range(0, rounds, block):
        b = min(block, rounds - start)
        idx = rng.integers(0, n, size=(b, n))
        values[start : start + b] = np.asarray(statistic(*(a[idx] for a in data)), dtype=np.float64).reshape(b)
    alpha = (1.0 - level) / 2
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def preference_summary(
    score1: ArrayLike,
    score2: ArrayLike,
    human: ArrayLike,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    weights: ArrayLike | None = None,
) -> dict[str, Any]:
    """Both scores of one model on one benchmark, with bootstrap intervals, as a JSON-friendly dict.

    ``human`` in {1, 2, 0 = tie}. With ``weights`` (per pair, positive: the design weights of informative pair
    selection) both figures are the weighted (Hajek) ones and the bootstrap resamples pairs with their weights.
    Returns::

        {"preference_ratio": {"value", "lower", "upper"},
         "agreement": {"value", "lower", "upper", "pairs", "human_ties", "model_ties"},
         "n": pairs in total, "rounds", "seed", "level"}

    Undefined values are ``None``. Both intervals resample the same pairs (same seed).
    """
    s1, s2, h = _pair_arrays(score1, score2, human, names=("score1", "score2", "human"))
    h = _check_human(h)
    if s1.ndim != 1 or s1.size == 0:
        raise ValueError(f"preference_summary needs non-empty 1-D arrays, got shape {s1.shape}")
    pref1 = h == HUMAN_SET1
    agree = agreement(s1, s2, h)
    if weights is None:
        ratio = preference_ratio(s1, s2, pref1)
        r_lo, r_hi = bootstrap_ci(preference_ratio, s1, s2, pref1, rounds=rounds, seed=seed, level=level)
        a_lo, a_hi = bootstrap_ci(agreement_value, s1, s2, h, rounds=rounds, seed=seed, level=level)
        value = agree["agreement"]
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != s1.shape or not (w > 0).all():
            raise ValueError(f"weights must be positive, one per pair ({s1.size}), got shape {w.shape}")
        ratio = preference_ratio(s1, s2, pref1, weights=w)
        r_lo, r_hi = bootstrap_ci(lambda a, b, c, d: preference_ratio(a, b, c, weights=d), s1, s2, pref1, w,
                                  rounds=rounds, seed=seed, level=level)
        a_lo, a_hi = bootstrap_ci(lambda a, b, c, d: agreement_value(a, b, c, weights=d), s1, s2, h, w,
                                  rounds=rounds, seed=seed, level=level)
        value = _json_float(float(agreement_value(s1, s2, h, weights=w)))
    return {
        "preference_ratio": {"value": float(ratio), "lower": _json_float(r_lo), "upper": _json_float(r_hi)},
        "agreement": {
            "value": value,
            "lower": _json_float(a_lo),
            "upper": _json_float(a_hi),
            "pairs": agree["pairs"],
            "human_ties": agree["human_ties"],
            "model_ties": agree["model_ties"],
        },
        "n": int(s1.size),
        "rounds": rounds,
        "seed": seed,
        "level": level,
    }
