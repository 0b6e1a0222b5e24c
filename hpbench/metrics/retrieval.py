"""Ranking and Recall@K for composed image retrieval, as the official FashionIQ and CIRR evaluations do.

Scores
    A query's relevance to a gallery image is the dot product of their embeddings (cosine when both are
    unit vectors). A gallery given as ``(N, T, D)`` holds several vectors per image (BLIP-2's query tokens);
    the image's score is then the maximum over its ``T`` vectors, as SPRC and QuRe score. Scores are computed
    one block of queries at a time (one matrix product per block), so memory is bounded by the block size.

Ranking and ties (one rule everywhere in this module)
    Gallery items are ordered by descending score; items with EQUAL scores are ordered by ascending gallery
    index (a stable descending sort: ``np.argsort(-scores, kind="stable")``). The 0-based rank of an item is
    therefore ``#{j: s_j > s_t} + #{j: s_j == s_t and j < t}``, and an item with rank ``r`` appears at
    position ``r`` of :func:`topk_from_scores`'s output. Recall@K counts a query as a hit when the
    target's 0-based rank is ``< K``. (The official code calls ``torch.argsort(..., descending=True)``,
    whose order among exactly equal scores is unspecified; with real-valued embeddings exact ties
    essentially never occur, and this module makes them deterministic.)

Removing an item from a ranking (CIRR's reference image) gives every item behind it a rank one smaller and
leaves the rest unchanged, exactly like deleting it from the sorted list as the official code does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

#: Upper bound on the number of float32 scores held at once by the chunked helpers (64 MiB).
BLOCK_ELEMENTS = 1 << 24

FASHIONIQ_KS = (10, 50)
CIRR_KS = (1, 5, 10, 50)
CIRR_SUBSET_KS = (1, 2, 3)


# ----------------------------------------------------------------------------------------------------------
# Scores, top-k and exact ranks
# ----------------------------------------------------------------------------------------------------------


def _as_embeddings(queries: ArrayLike, gallery: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(queries)
    g = np.asarray(gallery)
    if q.ndim != 2:
        raise ValueError(f"queries must be a (Q, D) array, got shape {q.shape}")
    if g.ndim not in (2, 3):
        raise ValueError(f"gallery must be a (N, D) or (N, T, D) array, got shape {g.shape}")
    if q.shape[1] != g.shape[-1]:
        raise ValueError(f"queries have dimension {q.shape[1]} but gallery has dimension {g.shape[-1]}")
    if g.shape[0] == 0:
        raise ValueError("gallery is empty")
    dtype = np.result_type(q.dtype, g.dtype, np.float32)
    q = np.ascontiguousarray(q, dtype=dtype)
    g = np.ascontiguousarray(g, dtype=dtype)
    for name, arr in (("queries", q), ("gallery", g)):
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(f"{name} contain a NaN or infinite value at index {tuple(int(i) for i in bad)}")
    return q, g


def _rows_per_block(n_gallery_vectors: int, n_queries: int, chunk: int | None) -> int:
    if chunk is not None:
        if chunk < 1:
            raise ValueError(f"chunk must be a positive number of queries, got {chunk}")
        return chunk
    return max(1, min(max(n_queries, 1), BLOCK_ELEMENTS // max(n_gallery_vectors, 1)))


def score_blocks(
    queries: ArrayLike, gallery: ArrayLike, *, chunk: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, scores)`` for consecutive blocks of queries.

    ``queries`` is ``(Q, D)``; ``gallery`` is ``(N, D)`` or ``(N, T, D)`` (score = max over ``T``).
    ``scores`` is the ``(rows, N)`` relevance of ``queries[start:start + rows]`` to every gallery item, in the
    embeddings' floating type (float32 or wider). ``chunk`` is the number of queries per block; by
    default it is chosen so that one block holds at most :data:`BLOCK_ELEMENTS` scores (before the max
    over ``T``).
    Raises ``ValueError`` on mismatched shapes, an empty gallery or non-finite embeddings.
    """
    q, g = _as_embeddings(queries, gallery)
    n = g.shape[0]
    multi = g.ndim == 3
    flat = g.reshape(-1, g.shape[-1]) if multi else g
    rows = _rows_per_block(flat.shape[0], q.shape[0], chunk)
    for start in range(0, q.shape[0], rows):
        block = q[start : start + rows] @ flat.T
        if multi:
            block = block.reshape(block.shape[0], n, g.shape[1]).max(axis=2)
        yield start, block


def _check_scores(scores: ArrayLike) -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a (Q, N) array, got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    if not np.isfinite(s).all():
        bad = np.argwhere(~np.isfinite(s))[0]
        raise ValueError(f"scores contain a NaN or infinite value at (query {bad[0]}, gallery {bad[1]})")
    return s


def _check_index(values: ArrayLike | None, n_rows: int, n_gallery: int, what: str, *, allow_none: bool) -> np.ndarray:
    """A ``(n_rows,)`` int64 array of gallery indices (``-1`` meaning none when ``allow_none``)."""
    if values is None:
        return np.full(n_rows, -1, dtype=np.int64)
    arr = np.asarray(values)
    if arr.shape != (n_rows,):
        raise ValueError(f"{what} must have shape ({n_rows},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must hold integer gallery indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    low = -1 if allow_none else 0
    bad = np.flatnonzero((arr < low) | (arr >= n_gallery))
    if bad.size:
        raise ValueError(f"{what}[{bad[0]}] = {arr[bad[0]]} is not a gallery index in [{low}, {n_gallery - 1}]")
    return arr


def topk_from_scores(scores: ArrayLike, k: int, *, exclude: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best gallery items per row of a ``(Q, N)`` score block, in ranking order.

    ``exclude`` (optional, ``(Q,)`` ints) names one gallery index to remove from each row's ranking,
    ``-1`` for none. Returns ``(indices, scores)``, both ``(Q, k)``: row ``i`` lists the gallery indices
    of ranks ``0..k-1`` under the module's tie rule (descending score, then ascending index) and their
    scores. Raises ``ValueError`` if ``k`` is not in ``[1, N]`` (``N - 1`` when a row excludes an item),
    on non-finite scores or on bad indices.
    """
    s = _check_scores(scores)
    n_rows, n = s.shape
    ex = _check_index(exclude, n_rows, n, "exclude", allow_none=True)
    has_ex = ex >= 0
    limit = n - (1 if has_ex.any() else 0)
    if not 1 <= k <= limit:
        raise ValueError(f"k must be between 1 and {limit} for a gallery of {n} items, got {k}")
    if n_rows == 0:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=s.dtype)
    if has_ex.any():
        s = s.copy()
        rows = np.flatnonzero(has_ex)
        s[rows, ex[rows]] = -np.inf

    if k == n:
        cand = np.broadcast_to(np.arange(n, dtype=np.int64), (n_rows, n)).copy()
    else:
        cand = np.argpartition(s, n - k, axis=1)[:, n - k :].astype(np.int64, copy=False)
    cand_scores = np.take_along_axis(s, cand, axis=1)
    # argpartition picks arbitrarily among items tied with the k-th best score; rows where such a tie
    # straddles the cut are redone with a stable sort so the tie rule holds exactly.
    kth = cand_scores.min(axis=1)
    n_above = np.count_nonzero(s > kth[:, None], axis=1)
    n_equal = np.count_nonzero(s == kth[:, None], axis=1)
    redo = np.flatnonzero(n_equal > k - n_above)
    if redo.size:
        cand[redo] = np.argsort(-s[redo], axis=1, kind="stable")[:, :k]
        cand_scores[redo] = np.take_along_axis(s[redo], cand[redo], axis=1)
    order = np.lexsort((cand, -cand_scores), axis=1)
    return np.take_along_axis(cand, order, axis=1), np.take_along_axis(cand_scores, order, axis=1)


def topk_from_embeddings(
    queries: ArrayLike,
    gallery: ArrayLike,
    k: int,
    *,
    chunk: int | None = None,
    exclude: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best gallery items for each query, computed block by block.

    ``queries`` ``(Q, D)``, ``gallery`` ``(N, D)`` or ``(N, T, D)`` (see :func:`score_blocks`);
    ``exclude`` as in :func:`topk_from_scores`. Returns ``(indices (Q, k) int64, scores (Q, k))`` in
    ranking order. Peak memory is one block of ``chunk`` x ``N`` scores.
    """
    q = np.asarray(queries)
    n_queries = q.shape[0] if q.ndim == 2 else 0
    g_shape = np.shape(gallery)
    ex = _check_index(exclude, n_queries, g_shape[0] if g_shape else 0, "exclude", allow_none=True)
    indices: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for start, block in score_blocks(q, gallery, chunk=chunk):
        idx, val = topk_from_scores(block, k, exclude=ex[start : start + block.shape[0]])
        indices.append(idx)
        scores.append(val)
    if not indices:
        _ = topk_from_scores(np.zeros((0, g_shape[0])), k)  # validates k for an empty query set
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
    return np.concatenate(indices), np.concatenate(scores)


def target_ranks_from_scores(scores: ArrayLike, target: ArrayLike, *, exclude: ArrayLike | None = None) -> np.ndarray:
    """Exact 0-based rank of each row's target in a ``(Q, N)`` score block.

    ``target`` ``(Q,)`` gallery indices; ``exclude`` ``(Q,)`` gallery indices removed from the ranking
    (``-1``: none). Rank = number of (non-excluded) items ranked ahead of the target under the module's
    tie rule.
    Raises ``ValueError`` if a target is also the excluded item, or on bad indices / non-finite scores.
    """
    s = _check_scores(scores)
    n_rows, n = s.shape
    t = _check_index(target, n_rows, n, "target", allow_none=False)
    ex = _check_index(exclude, n_rows, n, "exclude", allow_none=True)
    clash = np.flatnonzero(t == ex)
    if clash.size:
        raise ValueError(f"query row {clash[0]}: its target {t[clash[0]]} is removed from its ranking")
    return _target_ranks(s, t, ex)


def _target_ranks(s: np.ndarray, t: np.ndarray, ex: np.ndarray) -> np.ndarray:
    """:func:`target_ranks_from_scores` on validated inputs."""
    n_rows, n = s.shape
    rows = np.arange(n_rows)
    ts = s[rows, t][:, None]
    ranks = np.count_nonzero(s > ts, axis=1).astype(np.int64)
    # Items tied with the target rank ahead of it when they come first in gallery order; exact ties are
    # rare, so only rows that have one pay for the extra pass.
    tied = np.flatnonzero(np.count_nonzero(s == ts, axis=1) > 1)
    if tied.size:
        before = np.arange(n)[None, :] < t[tied, None]
        ranks[tied] += np.count_nonzero((s[tied] == ts[tied]) & before, axis=1)
    has_ex = np.flatnonzero(ex >= 0)
    if has_ex.size:
        se = s[has_ex, ex[has_ex]]
        te = ts[has_ex, 0]
        ranks[has_ex] -= (se > te) | ((se == te) & (ex[has_ex] < t[has_ex]))
    return ranks


def target_ranks(
    queries: ArrayLike,
    gallery: ArrayLike,
    target: ArrayLike,
    *,
    exclude: ArrayLike | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """Exact 0-based rank of each query's target among the gallery (see :func:`target_ranks_from_scores`).

    Embedding shapes as in :func:`score_blocks`. Returns ``(Q,)`` int64.
    """
    q = np.asarray(queries)
    n_queries = q.shape[0] if q.ndim == 2 else 0
    n_gallery = np.shape(gallery)[0] if np.ndim(gallery) else 0
    t = _check_index(target, n_queries, n_gallery, "target", allow_none=False)
    ex = _check_index(exclude, n_queries, n_gallery, "exclude", allow_none=True)
    clash = np.flatnonzero(t == ex)
    if clash.size:
        raise ValueError(f"query {clash[0]}: its target {t[clash[0]]} is removed from its ranking")
    out = np.empty(n_queries, dtype=np.int64)
    # blocks come from finite embeddings, so they skip the per-block checks
    for start, block in score_blocks(q, gallery, chunk=chunk):
        stop = start + block.shape[0]
        out[start:stop] = _target_ranks(block, t[start:stop], ex[start:stop])
    return out


def recall_at_k(ranks: ArrayLike, ks: Sequence[int]) -> dict[int, float]:
    """Recall@K in percent for each ``K`` in ``ks``: 100 x the fraction of 0-based ``ranks`` below ``K``.

    Raises ``ValueError`` for an empty ``ranks`` (recall is undefined without queries) or negative ranks.
    """
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {r.shape}")
    if (r < 0).any():
        raise ValueError(f"ranks must be >= 0, got {r.min()}")
    return {int(k): float(np.count_nonzero(r < k) * 100.0 / r.size) for k in ks}


# ----------------------------------------------------------------------------------------------------------
# FashionIQ
# ----------------------------------------------------------------------------------------------------------


def fashioniq_recall(per_category: Mapping[str, ArrayLike]) -> dict[str, Any]:
    """FashionIQ Recall@10/@50 from each category's 0-based target ranks, as the official evaluation reports.

    Protocol (CLIP4Cir / SPRC / QuRe ``eval_fiq``): for each category the gallery is every image of that
    category's split file and the reference image is NOT removed from the ranking; the ranks given here
    must come from such a ranking (e.g. :func:`target_ranks` with no ``exclude``). Returns::

        {"dress": {"R@10": .., "R@50": ..}, ..., "mean": {"R@10": .., "R@50": ..}, "avg": ..}

    all in percent: per-category recalls, their unweighted means over categories, and ``avg`` = the
    mean of the two means. Raises ``ValueError`` for no categories or a category without queries.
    """
    if not per_category:
        raise ValueError("fashioniq_recall needs at least one category")
    out: dict[str, Any] = {}
    for category, ranks in per_category.items():
        if category in ("mean", "avg"):
            raise ValueError(f"category name {category!r} collides with a summary key")
        try:
            recalls = recall_at_k(ranks, FASHIONIQ_KS)
        except ValueError as exc:
            raise ValueError(f"category {category!r}: {exc}") from None
        out[category] = {f"R@{k}": v for k, v in recalls.items()}
    categories = list(per_category)
    mean = {f"R@{k}": float(np.mean([out[c][f"R@{k}"] for c in categories])) for k in FASHIONIQ_KS}
    out["mean"] = mean
    out["avg"] = float((mean["R@10"] + mean["R@50"]) / 2)
    return out


def fashioniq_recall_from_embeddings(
    per_category: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike]], *, chunk: int | None = None
) -> dict[str, Any]:
    """FashionIQ recall from embeddings: ``{category: (queries (Q, D), gallery (N, D|T, D), target (Q,))}``.

    ``target`` holds gallery indices into that category's gallery. Same output as :func:`fashioniq_recall`.
    """
    ranks = {}
    for category, (queries, gallery, target) in per_category.items():
        try:
            ranks[category] = target_ranks(queries, gallery, target, chunk=chunk)
        except ValueError as exc:
            raise ValueError(f"category {category!r}: {exc}") from None
    return fashioniq_recall(ranks)


# ----------------------------------------------------------------------------------------------------------
# CIRR
# ----------------------------------------------------------------------------------------------------------


def _members_array(members: ArrayLike | Sequence[Sequence[int]], n_rows: int, n_gallery: int) -> np.ndarray:
    """``(Q, M)`` int64 gallery indices, ``-1`` padding, from an array or a ragged list of lists."""
    if isinstance(members, np.ndarray):
        arr = members
    else:
        rows = list(cast("Sequence[Sequence[int]]", members))
        if len(rows) != n_rows:
            raise ValueError(f"members must have one entry per query ({n_rows}), got {len(rows)}")
        width = max((len(r) for r in rows), default=0)
        arr = np.full((n_rows, width), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            arr[i, : len(r)] = np.asarray(r, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise ValueError(f"members must be a ({n_rows}, M) array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"members must hold integer gallery indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.argwhere((arr < -1) | (arr >= n_gallery))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"members[{i}][{j}] = {arr[i, j]} is not a gallery index in [-1, {n_gallery - 1}]")
    return arr


def subset_ranks_from_scores(
    scores: ArrayLike, target: ArrayLike, members: ArrayLike, *, exclude: ArrayLike | None = None
) -> np.ndarray:
    """0-based rank of each target among its row's ``members`` (``(Q, M)``, ``-1`` padding) in a score block.

    The ``exclude`` item (CIRR's reference) is dropped from the subset. Same tie rule as the full
    ranking, so the subset order is the full order restricted to the subset. Raises ``ValueError`` when
    a row's target is not among its (remaining) members, as the official code asserts.
    """
    s = _check_scores(scores)
    n_rows, n = s.shape
    t = _check_index(target, n_rows, n, "target", allow_none=False)
    ex = _check_index(exclude, n_rows, n, "exclude", allow_none=True)
    m = _members_array(members, n_rows, n)
    valid = (m >= 0) & (m != ex[:, None])
    missing = np.flatnonzero(~(valid & (m == t[:, None])).any(axis=1))
    if missing.size:
        raise ValueError(f"query row {missing[0]}: its target {t[missing[0]]} is not in its subset members")
    return _subset_ranks(s, t, m, ex)


def _subset_ranks(s: np.ndarray, t: np.ndarray, m: np.ndarray, ex: np.ndarray) -> np.ndarray:
    """:func:`subset_ranks_from_scores` on validated inputs."""
    n_rows = s.shape[0]
    valid = (m >= 0) & (m != ex[:, None])
    rows = np.arange(n_rows)
    ts = s[rows, t][:, None]
    ms = np.take_along_axis(s, np.where(m >= 0, m, 0), axis=1)
    ahead = valid & ((ms > ts) | ((ms == ts) & (m < t[:, None])))
    return ahead.sum(axis=1, dtype=np.int64)


def cirr_recall_from_ranks(ranks: ArrayLike, subset_ranks: ArrayLike) -> dict[str, float]:
    """CIRR metrics from 0-based target ranks (reference removed) and subset ranks, in percent.

    Returns ``{"R@1", "R@5", "R@10", "R@50", "Rsubset@1", "Rsubset@2", "Rsubset@3", "avg"}`` where
    ``avg = (R@5 + Rsubset@1) / 2``.
    """
    r = np.asarray(ranks)
    sr = np.asarray(subset_ranks)
    if r.shape != sr.shape:
        raise ValueError(f"ranks {r.shape} and subset_ranks {sr.shape} must have the same shape")
    out = {f"R@{k}": v for k, v in recall_at_k(r, CIRR_KS).items()}
    out.update({f"Rsubset@{k}": v for k, v in recall_at_k(sr, CIRR_SUBSET_KS).items()})
    out["avg"] = (out["R@5"] + out["Rsubset@1"]) / 2
    return out


def cirr_recall(
    queries: ArrayLike,
    gallery: ArrayLike,
    *,
    reference: ArrayLike,
    target: ArrayLike,
    members: ArrayLike | Sequence[Sequence[int]],
    chunk: int | None = None,
) -> dict[str, float]:
    """CIRR Recall@1/5/10/50, Recall_subset@1/2/3 and their headline average, in percent.

    Protocol (CIRR / CLIP4Cir / SPRC / QuRe ``eval_cirr``): the gallery is every image of the split;
    each query's ``reference`` image (gallery index) is removed from its ranking before Recall@K; the
    ground truth is ``target`` (the gallery index of ``target_hard``); Recall_subset ranks only the
    query's ``members`` (gallery indices of ``img_set.members``; a ragged list or a ``(Q, M)`` array
    padded with ``-1``) minus the reference. Output as :func:`cirr_recall_from_ranks`.
    """
    q = np.asarray(queries)
    n_queries = q.shape[0] if q.ndim == 2 else 0
    n_gallery = np.shape(gallery)[0] if np.ndim(gallery) else 0
    ref = _check_index(reference, n_queries, n_gallery, "reference", allow_none=False)
    tgt = _check_index(target, n_queries, n_gallery, "target", allow_none=False)
    mem = _members_array(members, n_queries, n_gallery)
    clash = np.flatnonzero(tgt == ref)
    if clash.size:
        raise ValueError(f"query {clash[0]}: the target {tgt[clash[0]]} is also its reference image")
    in_subset = ((mem == tgt[:, None]) & (mem != ref[:, None])).any(axis=1)
    missing = np.flatnonzero(~in_subset)
    if missing.size:
        raise ValueError(f"query {missing[0]}: the target {tgt[missing[0]]} is not among its subset members")
    ranks = np.empty(n_queries, dtype=np.int64)
    subset = np.empty(n_queries, dtype=np.int64)
    for start, block in score_blocks(q, gallery, chunk=chunk):
        sl = slice(start, start + block.shape[0])
        ranks[sl] = _target_ranks(block, tgt[sl], ref[sl])
        subset[sl] = _subset_ranks(block, tgt[sl], mem[sl], ref[sl])
    return cirr_recall_from_ranks(ranks, subset)


def cirr_rankings(
    queries: ArrayLike,
    gallery: ArrayLike,
    *,
    reference: ArrayLike,
    members: ArrayLike | Sequence[Sequence[int]],
    k: int = 50,
    subset_k: int = 3,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rankings a CIRR test1 submission lists, as gallery indices.

    Returns ``(top (Q, k), subset_top (Q, subset_k))``: the ``k`` best gallery items with the reference
    removed, and the ``subset_k`` best of ``members`` minus the reference (``-1`` padding where the
    subset is smaller).
    Map indices to image names and pass them to :func:`cirr_submission`.
    """
    q = np.asarray(queries)
    n_queries = q.shape[0] if q.ndim == 2 else 0
    n_gallery = np.shape(gallery)[0] if np.ndim(gallery) else 0
    ref = _check_index(reference, n_queries, n_gallery, "reference", allow_none=False)
    mem = _members_array(members, n_queries, n_gallery)
    if subset_k < 1:
        raise ValueError(f"subset_k must be >= 1, got {subset_k}")
    tops: list[np.ndarray] = []
    subsets: list[np.ndarray] = []
    for start, block in score_blocks(q, gallery, chunk=chunk):
        sl = slice(start, start + block.shape[0])
        top, _ = topk_from_scores(block, k, exclude=ref[sl])
        tops.append(top)
        m = mem[sl]
        valid = (m >= 0) & (m != ref[sl, None])
        ms = np.take_along_axis(block, np.where(m >= 0, m, 0), axis=1)
        # invalid members sort last: key (valid first, score descending, index ascending)
        order = np.lexsort((m, -ms, ~valid), axis=1)[:, :subset_k]
        picked = np.take_along_axis(m, order, axis=1)
        picked[~np.take_along_axis(valid, order, axis=1)] = -1
        if picked.shape[1] < subset_k:
            picked = np.pad(picked, ((0, 0), (0, subset_k - picked.shape[1])), constant_values=-1)
        subsets.append(picked)
    if not tops:
        return np.empty((0, k), dtype=np.int64), np.empty((0, subset_k), dtype=np.int64)
    return np.concatenate(tops), np.concatenate(subsets)


def cirr_submission(
    pairids: Sequence[int | str],
    ranked_names_top50: Sequence[Sequence[str]],
    subset_ranked_names_top3: Sequence[Sequence[str]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two CIRR test1 submission objects for the official evaluation server.

    Returns ``(recall, recall_subset)``::

        {"version": "rc2", "metric": "recall", "<pairid>": [50 image names], ...}
        {"version": "rc2", "metric": "recall_subset", "<pairid>": [3 image names], ...}

    Pair ids are written as ``str(int(pairid))``, as CLIP4Cir and SPRC do; write each with ``json.dump``.
    Raises ``ValueError`` when the three sequences differ in length, a pair id repeats or is not an integer, a
    list does not hold exactly 50 (resp. 3) distinct names, or a name is not a non-empty string.
    """
    n = len(pairids)
    if len(ranked_names_top50) != n or len(subset_ranked_names_top3) != n:
        raise ValueError(
            f"pairids ({n}), ranked_names_top50 ({len(ranked_names_top50)}) and "
            f"subset_ranked_names_top3 ({len(subset_ranked_names_top3)}) must have the same length"
        )
    recall: dict[str, Any] = {"version": "rc2", "metric": "recall"}
    subset: dict[str, Any] = {"version": "rc2", "metric": "recall_subset"}
    for i, (pairid, top, sub) in enumerate(zip(pairids, ranked_names_top50, subset_ranked_names_top3, strict=True)):
        try:
            key = str(int(pairid))
        except (TypeError, ValueError):
            raise ValueError(f"pairids[{i}] = {pairid!r} is not an integer pair id") from None
        if key in recall:
            raise ValueError(f"pairids[{i}]: pair id {key} appears twice")
        for what, names, size, target in (
            ("ranked_names_top50", top, 50, recall),
            ("subset_ranked_names_top3", sub, 3, subset),
        ):
            names = list(names)
            if len(names) != size:
                raise ValueError(f"{what}[{i}] (pair {key}) must hold {size} names, got {len(names)}")
            if any(not isinstance(x, str) or not x for x in names):
                raise ValueError(f"{what}[{i}] (pair {key}) must hold non-empty strings")
            if len(set(names)) != size:
                raise ValueError(f"{what}[{i}] (pair {key}) repeats an image name")
            target[key] = names
    return recall, subset


# ----------------------------------------------------------------------------------------------------------
# Rankings given as lists (score files: researchers' own top-K lists)
# ----------------------------------------------------------------------------------------------------------


def target_ranks_from_rankings(rankings: Sequence[Sequence[Any]], targets: Sequence[Any], *, depth: int) -> np.ndarray:
    """0-based rank of each row's target in a submitted ranking (best first), for Recall@K with ``K <= depth``.

    ``rankings[i]`` lists at most ``depth`` distinct items of query ``i`` best first (the items removed by the
    protocol, e.g. CIRR's reference image, already left out); ``targets[i]`` is its ground truth. A target
    found at position ``p`` has rank ``p``; a target absent from the list has rank ``depth`` (outside every
    Recall@K with ``K <= depth``), so :func:`recall_at_k`, :func:`fashioniq_recall` and
    :func:`cirr_recall_from_ranks` give the same figures as from a full ranking. Returns ``(Q,)`` int64.
    Raises ``ValueError`` when the lengths differ or a list is longer than ``depth`` or repeats an item.
    """
    if len(rankings) != len(targets):
        raise ValueError(f"rankings ({len(rankings)}) and targets ({len(targets)}) must have the same length")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    out = np.full(len(rankings), depth, dtype=np.int64)
    for i, (ranking, target) in enumerate(zip(rankings, targets, strict=True)):
        items = list(ranking)
        if len(items) > depth:
            raise ValueError(f"rankings[{i}] lists {len(items)} items, more than the depth {depth}")
        if len(set(items)) != len(items):
            raise ValueError(f"rankings[{i}] repeats an item")
        if target in items:
            out[i] = items.index(target)
    return out
