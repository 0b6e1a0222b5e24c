"""Paired comparisons of models scored on the same judged pairs, and ranks from them (as LMArena ranks).

Credit
    On a pair with a human preference (verdict 1 or 2) a model earns 1 when it prefers the human's set, 0.5 when it
    scores both sets equally (a model tie) and 0 otherwise, as :func:`hpbench.metrics.preference.agreement_value`.
    Pairs the human called a tie are left out.

Shared pairs
    ``usable`` (optional, ``(M, P)`` boolean) says which pairs may be used for each model (e.g. the pairs held out
    for it: neither set made by it). Models ``i`` and ``j`` are compared on their SHARED pairs: usable for both, with
    a human preference. Without ``usable`` every pair with a human preference is shared.

Paired difference ``d[i, j]``
    The mean over shared pairs of ``credit_i - credit_j`` (with ``weights``, each pair's selection weight 1/π: the
    weighted mean), i.e. i's agreement minus j's on the same pairs. Per pair the difference takes one of five values
    (-1, -0.5, 0, 0.5, 1), so the counts (or weight sums) of those five values per model pair carry every figure
    below; they come from products of one-hot credit matrices (bit counts of packed rows; weighted: matrix products over
    blocks of pairs), never a loop over pairs.

Test (which model is better, per model pair)
    Unweighted: the exact McNemar test. A pair is discordant when the two credits differ; it counts for the model
    with more credit (a right answer against a model tie counts the same as against a wrong one: model ties are
    rare with real-valued scores, and this keeps the test exact). Under "neither model is better" each discordant
    pair favours either model with probability 1/2, so the two-sided p-value is
    ``scipy.stats.binomtest(b, b + c, 0.5).pvalue`` with ``b``, ``c`` the discordant pairs each way (``1`` when
    there is none). Weighted benchmarks (pairs drawn with unequal probability): a Wald test of the weighted
    difference, ``z = d / se`` with the linearised (ratio-estimator) standard error
    ``se² = n / (n - 1) · Σ w² (x - d)² / (Σ w)²`` over the shared pairs' differences ``x``; ``p = 2 Φ(-|z|)``.

Multiple comparisons
    Holm's step-down correction over every model pair with at least one shared pair (family-wise error rate
    ``alpha``, default 0.05). ``i`` is significantly better than ``j`` when the Holm-adjusted p-value is below
    ``alpha`` and ``d[i, j] > 0``.

Rank
    ``rank[i] = 1 + the number of models significantly better than i`` (LMArena's rule, applied to paired tests
    rather than to overlapping intervals: two models' intervals can overlap while their paired difference, whose
    pair-to-pair noise cancels, is clearly not zero).

Interval of a difference (:func:`difference_interval`)
    Unweighted: the paired bootstrap percentile interval: resampling the shared pairs with replacement is drawing
    the five difference values' counts from a multinomial with the observed shares, so each round costs five
    numbers, not a pass over the pairs. Weighted: ``d ± z_(1+level)/2 · se`` (the Wald interval of the test above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

#: The five values a pair's credit difference can take, in the order of the last axis of ``counts``.
DIFFERENCE_VALUES = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])

#: Pairs per block of the weighted matrix products.
_BLOCK = 1 << 15


@dataclass(frozen=True)
class PairedComparisons:
    """Every model pair's comparison on their shared pairs; ``[i, j]`` reads "model i against model j".

    ``n``: shared pairs (``(M, M)`` int64, symmetric). ``counts``: ``(M, M, 5)`` number of shared pairs whose credit
    difference ``credit_i - credit_j`` is each of :data:`DIFFERENCE_VALUES`; ``weight_sums`` / ``weight_sq_sums``:
    the same with each pair's weight / squared weight (``None`` unweighted). ``difference``: ``d[i, j]`` (nan where
    nothing is shared). ``p_value``: the two-sided test (symmetric; 1 where nothing is shared or ``i == j``).
    ``p_holm``: Holm-adjusted. ``significant[i, j]``: i significantly better than j. ``rank``: ``(M,)``.
    """

    n: np.ndarray
    counts: np.ndarray
    weight_sums: np.ndarray | None
    weight_sq_sums: np.ndarray | None
    difference: np.ndarray
    p_value: np.ndarray
    p_holm: np.ndarray
    significant: np.ndarray
    rank: np.ndarray
    alpha: float

    @property
    def weighted(self) -> bool:
        return self.weight_sums is not None


def _inputs(
    choices: ArrayLike, human: ArrayLike, usable: ArrayLike | None, weights: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    c = np.asarray(choices)
    h = np.asarray(human)
    if c.ndim != 2:
        raise ValueError(f"choices must be (models, pairs), got shape {c.shape}")
    if h.shape != (c.shape[1],):
        raise ValueError(f"human must hold one verdict per pair ({c.shape[1]}), got shape {h.shape}")
    if c.size and (c.min() < 0 or c.max() > 2 or c.dtype.kind not in "iu"):  # min/max: isin is 20x slower
        bad = np.argwhere(~np.isin(c, (0, 1, 2)))
        m, p = bad[0] if bad.size else (0, 0)
        raise ValueError(f"choices[{m}][{p}] = {c[m, p].item()!r}: expected 1, 2 or 0 (model tie), as integers")
    if h.size and (h.min() < 0 or h.max() > 2 or h.dtype.kind not in "iu"):
        bad_h = np.flatnonzero(~np.isin(h, (0, 1, 2)))
        at = int(bad_h[0]) if bad_h.size else 0
        raise ValueError(f"human[{at}] = {h[at].item()!r}: expected 1, 2 or 0 (tie), as integers")
    u = None
    if usable is not None:
        u = np.asarray(usable)
        if u.shape != c.shape or u.dtype != bool:
            raise ValueError(f"usable must be a boolean array of shape {c.shape}, got {u.dtype} {u.shape}")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != h.shape:
            raise ValueError(f"weights must hold one weight per pair ({h.size}), got shape {w.shape}")
        if w.size and not (np.isfinite(w).all() and (w > 0).all()):
            raise ValueError(f"weights[{np.flatnonzero(~(np.isfinite(w) & (w > 0)))[0]}] must be positive and finite")
    return c.astype(np.int8, copy=False), h.astype(np.int8, copy=False), u, w


def _masks(
    choices: np.ndarray, human: np.ndarray, usable: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(M, P)`` booleans: the pair counts for the model (shared-able: usable, human preference), the model right,
    the model tied."""
    use = np.broadcast_to(human != 0, choices.shape)
    if usable is not None:
        use = use & usable
    return use, (choices == human) & use, (choices == 0) & use


def _packed(rows: np.ndarray) -> np.ndarray:
    """Boolean rows packed into uint64 words (zero padded)."""
    packed = np.packbits(rows, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def _and_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, j]`` = number of positions where packed rows ``a[i]`` and ``b[j]`` are both set."""
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int64)
    for i in range(a.shape[0]):
        out[i] = np.bitwise_count(a[i] & b).sum(axis=1, dtype=np.int64)
    return out


def _products_counted(use: np.ndarray, right: np.ndarray, tie: np.ndarray) -> dict[str, np.ndarray]:
    """Unweighted products of the one-hot rows by bit counts (exact integers); tie products only for models that
    tie somewhere."""
    m = use.shape[0]
    u, r = _packed(use), _packed(right)
    out = {"rr": _and_counts(r, r), "ru": _and_counts(r, u), "uu": _and_counts(u, u)}
    out.update({k: np.zeros((m, m), dtype=np.int64) for k in ("rt", "tu", "tt")})
    tied = np.flatnonzero(tie.any(axis=1))
    if tied.size:
        t = _packed(tie[tied])
        out["rt"][:, tied] = _and_counts(r, t)
        out["tu"][tied, :] = _and_counts(t, u)
        out["tt"][np.ix_(tied, tied)] = _and_counts(t, t)
    return out


def _products_weighted(
    use: np.ndarray, right: np.ndarray, tie: np.ndarray, weighting: np.ndarray
) -> dict[str, np.ndarray]:
    """As :func:`_products_counted`, each pair counting its ``weighting``: one Gram matrix of ``[right; usable;
    tie]`` per block of pairs."""
    m, p = use.shape
    tied = np.flatnonzero(tie.any(axis=1))
    t_rows = 2 * m + np.arange(tied.size)
    out = {k: np.zeros((m, m)) for k in ("rr", "ru", "uu", "rt", "tu", "tt")}
    for start in range(0, p, _BLOCK):
        block = slice(start, start + _BLOCK)
        # x diag(w) x^T as the Gram matrix of x diag(sqrt w): numpy hands y @ y.T to BLAS syrk (half the work);
        # float32 within a block, float64 across blocks: relative error ~1e-6, far below the figures' precision.
        y = np.concatenate([right[:, block], use[:, block], tie[tied, block]]).astype(np.float32)
        y *= np.sqrt(weighting[block]).astype(np.float32)
        g = (y @ y.T).astype(np.float64)
        out["rr"] += g[:m, :m]
        out["ru"] += g[:m, m : 2 * m]
        out["uu"] += g[m : 2 * m, m : 2 * m]
        if tied.size:
            out["rt"][:, tied] += g[:m, t_rows]
            out["tu"][tied, :] += g[t_rows, m : 2 * m]
            out["tt"][np.ix_(tied, tied)] += g[np.ix_(t_rows, t_rows)]
    return out


def _five(products: dict[str, np.ndarray]) -> np.ndarray:
    """``(M, M, 5)`` sums by the value of ``credit_i - credit_j`` from the one-hot products."""
    rr, ru, uu, rt, tu, tt = (products[k] for k in ("rr", "ru", "uu", "rt", "tu", "tt"))
    # wrong = usable - right - tie, so "i right & j wrong" = "i right & j usable" - "i right & j right" - ...
    right_wrong = ru - rr - rt
    tie_wrong = tu - rt.T - tt
    half = rt + tie_wrong  # +0.5: i right and j tied, or i tied and j wrong
    five = np.stack([right_wrong.T, half.T, np.zeros_like(uu), half, right_wrong], axis=2).astype(np.float64)
    five[:, :, 2] = uu - five.sum(axis=2)  # 0: both right, both wrong or both tied
    return np.maximum(five, 0.0)  # rounding of weighted sums


def _category_sums(
    choices: np.ndarray, human: np.ndarray, usable: np.ndarray | None, weights: np.ndarray | None
) -> list[np.ndarray]:
    """Per weighting of the pairs (1; with weights also w and w²): ``(M, M, 5)`` sums over shared pairs, by the
    value of ``credit_i - credit_j`` (:data:`DIFFERENCE_VALUES`)."""
    use, right, tie = _masks(choices, human, usable)
    sums = [_five(_products_counted(use, right, tie))]
    if weights is not None:
        sums += [_five(_products_weighted(use, right, tie, omega)) for omega in (weights, weights * weights)]
    return sums


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of a 1-D array (step-down, monotone, capped at 1)."""
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def paired_comparisons(
    choices: ArrayLike,
    human: ArrayLike,
    *,
    usable: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    alpha: float = 0.05,
) -> PairedComparisons:
    """Paired differences, tests, Holm correction and ranks of ``M`` models on ``P`` judged pairs.

    ``choices`` ``(M, P)``: each model's preferred set per pair (1, 2, 0 = tie; ``preference.model_choices``).
    ``human`` ``(P,)``: the verdicts (1, 2, 0 = tie). ``usable`` ``(M, P)`` boolean and ``weights`` ``(P,)``
    positive: optional, as in the module docstring. Raises ``ValueError`` on bad shapes or codes.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    c, h, u, w = _inputs(choices, human, usable, weights)
    m = c.shape[0]
    sums = _category_sums(c, h, u, w)
    counts = np.rint(sums[0]).astype(np.int64)
    n_int = counts.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if w is None:
            difference = counts @ DIFFERENCE_VALUES / n_int
            b = counts[:, :, 3:].sum(axis=2)  # i earned more
            c_ = counts[:, :, :2].sum(axis=2)  # j earned more
            k = np.minimum(b, c_)
            p_value = np.where(b + c_ > 0, np.minimum(1.0, 2.0 * stats.binom.cdf(k, b + c_, 0.5)), 1.0)
        else:
            wsum, wsq = sums[1], sums[2]
            total = wsum.sum(axis=2)
            difference = wsum @ DIFFERENCE_VALUES / total
            se = _weighted_se(wsq, total, difference, n_int)
            z = np.abs(difference) / se
            p_value = np.where(n_int >= 2, np.where(se > 0, 2.0 * stats.norm.sf(z),
                                                    np.where(difference != 0, 0.0, 1.0)), 1.0)
    difference = np.where(n_int > 0, difference, np.nan)
    p_value = np.where(n_int > 0, p_value, 1.0)
    np.fill_diagonal(p_value, 1.0)
    iu = np.triu_indices(m, 1)
    tested = n_int[iu] > 0
    p_holm = np.ones((m, m))
    if tested.any():
        adjusted = _holm(p_value[iu][tested])
        p_holm[iu[0][tested], iu[1][tested]] = adjusted
        p_holm[iu[1][tested], iu[0][tested]] = adjusted
    significant = (p_holm < alpha) & (np.nan_to_num(difference) > 0)
    rank = 1 + significant.sum(axis=0)
    return PairedComparisons(
        n=n_int, counts=counts, weight_sums=None if w is None else sums[1],
        weight_sq_sums=None if w is None else sums[2], difference=difference, p_value=p_value, p_holm=p_holm,
        significant=significant, rank=rank.astype(np.int64), alpha=alpha,
    )


def _weighted_se(wsq: np.ndarray, total: np.ndarray, difference: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Linearised standard error of a weighted mean difference from its per-value sums of w²."""
    spread = np.sum(wsq * (DIFFERENCE_VALUES - difference[..., None]) ** 2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.sqrt(n / (n - 1.0) * spread) / total)


def difference_interval(
    comparisons: PairedComparisons, i: int, j: int, *, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Interval of ``d[i, j]`` (module docstring); ``(nan, nan)`` when the two share no pair.

    Unweighted: percentile interval of ``rounds`` paired-bootstrap rounds drawn with
    ``numpy.random.default_rng(seed)`` (deterministic). Weighted: the Wald interval.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = int(comparisons.n[i, j])
    if n == 0:
        return float("nan"), float("nan")
    if comparisons.weighted:
        assert comparisons.weight_sums is not None and comparisons.weight_sq_sums is not None
        d = float(comparisons.difference[i, j])
        se = float(_weighted_se(comparisons.weight_sq_sums[i, j], comparisons.weight_sums[i, j].sum(),
                                np.asarray(d), np.asarray(float(n)))) if n >= 2 else float("nan")
        half = float(stats.norm.ppf((1.0 + level) / 2)) * se
        return d - half, d + half
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, comparisons.counts[i, j] / n, size=rounds)
    values = draws @ DIFFERENCE_VALUES / n
    low, high = np.quantile(values, [(1.0 - level) / 2, (1.0 + level) / 2])
    return float(low), float(high)
