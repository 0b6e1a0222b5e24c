"""Features of a judged pair for the preference model (numpy only)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike


def pair_features(
    choices: ArrayLike,
    set1_maker: ArrayLike,
    set2_maker: ArrayLike,
    n_makers: int,
    *,
    reference: ArrayLike | None = None,
) -> np.ndarray:
    """``(P, K + M)`` float features: each of ``K`` scoring models' choice as +1 (set 1), -1 (set 2), 0 (tie), then
    +1 at set 1's maker and -1 at set 2's maker (``M = n_makers``; a maker ``-1`` means unknown: no entry). With
    ``reference`` (``(P,)``: +1 where only set 1 shows the query's reference image, -1 where only set 2 does, 0
    otherwise) it is the last column. The worker's inputs where it cannot read the models' top-K.

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
    blocks = [sign, makers]
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64)
        if r.shape != (n_pairs,) or not np.isin(r, (-1.0, 0.0, 1.0)).all():
            raise ValueError(f"reference needs one of -1, 0, 1 per pair ({n_pairs})")
        blocks.append(r[:, None])
    return np.concatenate(blocks, axis=1)


def reference_shown(reference_id: int | None, set1: Iterable[int], set2: Iterable[int]) -> int:
    """+1 when only set 1 holds the reference image, -1 when only set 2 does, 0 when both or neither (or no
    reference)."""
    if reference_id is None:
        return 0
    return int(reference_id in set(set1)) - int(reference_id in set(set2))


def gap_features(gaps: ArrayLike, reference: ArrayLike | None = None) -> np.ndarray:
    """``(P, K)`` (``K + 1`` with ``reference``): each of ``K`` scoring models' set-score gap, set 1 minus set 2
    (``(K, P)``, scaled by the caller, :func:`gap_scale`), then which set shows the query's reference image (as in
    :func:`pair_features`). The worker's inputs where it reads the models' top-K: the gaps carry the choices (their
    signs) and, on a campaign, what the set makers' strengths would add (measured on the demo and in
    ``bench/fewer_votes_ppi.py``: the choices and maker columns did not raise held-out agreement, and on a few hundred
    pairs lowered it). Swapping the sets negates every column. Raises ``ValueError`` on shapes or non-finite gaps."""
    g = np.asarray(gaps, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"gaps must be (models, pairs), got shape {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError("gaps must be finite")
    blocks = [g.T]
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64)
        if r.shape != (g.shape[1],) or not np.isin(r, (-1.0, 0.0, 1.0)).all():
            raise ValueError(f"reference needs one of -1, 0, 1 per pair ({g.shape[1]})")
        blocks.append(r[:, None])
    return np.concatenate(blocks, axis=1)


def gap_scale(*gaps: ArrayLike) -> np.ndarray:
    """Per scoring model, the root mean square of its set-score gaps over every given ``(K, P)`` block (labelled
    and unlabelled pairs alike: no label is used), 1 where all are 0; dividing by it puts every model's gaps on
    one footing without moving 0 (so the features still negate when the sets swap)."""
    blocks = [np.asarray(g, dtype=np.float64) for g in gaps]
    joined = np.concatenate([b for b in blocks if b.size], axis=1) if any(b.size for b in blocks) else None
    if joined is None:
        return np.ones(blocks[0].shape[0] if blocks and blocks[0].ndim == 2 else 0)
    rms = np.sqrt(np.mean(joined * joined, axis=1))
    return np.where(rms > 0, rms, 1.0)
