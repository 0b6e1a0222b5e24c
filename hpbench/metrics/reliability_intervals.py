"""Agreement and Krippendorff's alpha from per-item vote counts, vectorised for the bootstrap.

Items are the judged pairs; ``counts`` holds, per item, how many votes each category got (one column per
category, e.g. a / b / tie). The formulas are those of :mod:`hpbench.metrics.reliability` (items with fewer
than 2 votes carry no information and are dropped), written so that every array may have leading batch axes
and the statistic reduces over the last axis (items), as :func:`hpbench.metrics.preference.bootstrap_ci`
requires. Intervals resample items (whole pairs with all their votes) with replacement.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hpbench.metrics.preference import bootstrap_ci


def agreement_from_counts(*counts: ArrayLike) -> float | np.ndarray:
    """Pairwise agreement over items, one array of counts per category (shape ``(..., items)``).

    Returns ``nan`` where no item has 2+ votes.
    """
    arrays = [np.asarray(c, dtype=np.float64) for c in counts]
    m = np.add.reduce(arrays)
    pairs = (m * (m - 1) / 2).sum(axis=-1)
    agree = sum((c * (c - 1) / 2).sum(axis=-1) for c in arrays)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(pairs > 0, agree / np.where(pairs > 0, pairs, 1), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def alpha_from_counts(*counts: ArrayLike) -> float | np.ndarray:
    """Nominal Krippendorff's alpha over items, one array of counts per category (shape ``(..., items)``).

    With ``m_u`` votes on item ``u`` (items with ``m_u < 2`` dropped): ``o_cc = sum_u n_uc (n_uc - 1) / (m_u - 1)``,
    ``n_c = sum_u n_uc``, ``n = sum_c n_c``; ``alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2)``.
    Returns ``nan`` where undefined (no pairable vote, or one value only).
    """
    arrays = [np.asarray(c, dtype=np.float64) for c in counts]
    m = np.add.reduce(arrays)
    keep = m >= 2
    denom = np.where(keep, m - 1, 1.0)
    o_diag = sum((np.where(keep, c * (c - 1), 0.0) / denom).sum(axis=-1) for c in arrays)
    n_c = [np.where(keep, c, 0.0).sum(axis=-1) for c in arrays]
    n = sum(n_c)
    expected = n * n - sum(x * x for x in n_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(expected > 0, 1.0 - (n - 1) * (n - o_diag) / np.where(expected > 0, expected, 1), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def _or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def reliability_with_intervals(
    counts: ArrayLike, *, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """Agreement and alpha with percentile bootstrap intervals over items.

    ``counts`` is an ``(items, categories)`` array of vote counts. Returns ``{"items": items with 2+ votes,
    "pairwise_agreement", "agreement_ci": (low, high), "krippendorff_alpha", "alpha_ci": (low, high)}``;
    a figure or bound is ``None`` where undefined. Deterministic for a given seed. Raises ``ValueError`` when
    ``counts`` is not 2-D.
    """
    matrix = np.asarray(counts, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"counts must be an (items, categories) array, got shape {matrix.shape}")
    matrix = matrix[matrix.sum(axis=1) >= 2]
    columns = [matrix[:, j] for j in range(matrix.shape[1])]
    out: dict[str, Any] = {
        "items": int(matrix.shape[0]),
        "pairwise_agreement": None,
        "agreement_ci": (None, None),
        "krippendorff_alpha": None,
        "alpha_ci": (None, None),
    }
    if matrix.shape[0] == 0:
        return out
    out["pairwise_agreement"] = _or_none(float(agreement_from_counts(*columns)))
    out["krippendorff_alpha"] = _or_none(float(alpha_from_counts(*columns)))
    low, high = bootstrap_ci(agreement_from_counts, *columns, rounds=rounds, seed=seed, level=level)
    out["agreement_ci"] = (_or_none(low), _or_none(high))
    low, high = bootstrap_ci(alpha_from_counts, *columns, rounds=rounds, seed=seed, level=level)
    out["alpha_ci"] = (_or_none(low), _or_none(high))
    return out
