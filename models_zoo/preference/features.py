"""Features of a judged pair for the preference model (numpy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pair_features(
    choices: ArrayLike, set1_maker: ArrayLike, set2_maker: ArrayLike, n_makers: int
) -> np.ndarray:
    """``(P, K + M)`` float features: each of ``K`` scoring models' choice as +1 (set 1), -1 (set 2), 0 (tie), then
    +1 at set 1's maker and -1 at set 2's maker (``M = n_makers``; a maker ``-1`` means unknown: no entry).

    ``choices`` is ``(K, P)`` in {1, 2, 0} (``ModelScore.choices()`` stacked). Swapping the two sets negates every
    feature, which the model's lack of intercept turns into ``1 - p``. Raises ``ValueError`` on shapes or codes.
    """
    c = np.asarray(choices)
    if c.ndim != 2:
        raise ValueError(f"choices must be (models, pairs), got shape {c.shape}")
    if c.size and not np.isin(c, (0, 1, 2)).all():
        raise ValueError("choices must be 1, 2 or 0 (tie)")
    m1, m2 = np.asarray(set1_maker, dtype=np.int64), np.asarray(set2_maker, dtype=np.int64)
    n_pairs = c.shape[1]
    if m1.shape != (n_pairs,) or m2.shape != (n_pairs,):
        raise ValueError(f"set1_maker and set2_maker need one entry per pair ({n_pairs})")
    if (m1 >= n_makers).any() or (m2 >= n_makers).any():
        raise ValueError(f"a maker index is >= n_makers ({n_makers})")
    sign = np.where(c == 1, 1.0, np.where(c == 2, -1.0, 0.0)).T
    makers = np.zeros((n_pairs, n_makers))
    rows = np.arange(n_pairs)
    makers[rows[m1 >= 0], m1[m1 >= 0]] += 1.0
    makers[rows[m2 >= 0], m2[m2 >= 0]] -= 1.0
    return np.concatenate([sign, makers], axis=1)
