"""How often human annotators agree with each other: the human ceiling shown beside the models.

Input everywhere: one sequence of votes per item (a judged pair), each vote a hashable category such as
``1``, ``2`` or ``"tie"``. ``None`` entries are missing votes and are ignored, so rows of a coders x items
reliability matrix can be passed column by column. Only items with 2 or more votes carry information about
agreement; items with fewer are dropped.

- :func:`pairwise_agreement`: over all unordered pairs of votes cast on the same item (pooled over items),
  the fraction of pairs whose two votes are equal. An item with ``m`` votes contributes ``m(m-1)/2`` pairs.
- :func:`krippendorff_alpha_nominal`: Krippendorff's alpha for nominal data with missing values,
  ``alpha = 1 - D_o / D_e`` from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability", section C): each item with ``m_u >= 2`` votes adds ``1 / (m_u - 1)`` to ``o_ck``
  for every ordered pair of two different votes (``i != j``) with values ``(c, k)``; with
  ``n_c = sum_k o_ck`` and ``n = sum_c n_c``,
  ``alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k``.
Both return ``None`` when undefined (no item with 2+ votes; for alpha also when every vote has one value).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np


def _count_matrix(votes_by_item: Iterable[Sequence[Hashable | None]]) -> np.ndarray:
    """``(items with 2+ votes, categories)`` vote counts."""
    codes: dict[Hashable, int] = {}
    rows: list[dict[int, int]] = []
    for i, votes in enumerate(votes_by_item):
        if isinstance(votes, str | bytes):
            raise ValueError(f"item {i}: votes must be a sequence of values, not a string")
        counts: dict[int, int] = {}
        for vote in votes:
            if vote is None:
                continue
            try:
                code = codes.setdefault(vote, len(codes))
            except TypeError:
                raise ValueError(f"item {i}: vote {vote!r} is not a hashable category") from None
            counts[code] = counts.get(code, 0) + 1
        if sum(counts.values()) >= 2:
            rows.append(counts)
    matrix = np.zeros((len(rows), len(codes)), dtype=np.float64)
    for r, counts in enumerate(rows):
        for code, c in counts.items():
            matrix[r, code] = c
    return matrix


def pairwise_agreement(votes_by_item: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Fraction of agreeing pairs among all pairs of votes on the same item (items with 2+ votes).

    Returns ``None`` when no item has 2 or more votes.
    """
    counts = _count_matrix(votes_by_item)
    m = counts.sum(axis=1)
    pairs = float((m * (m - 1) / 2).sum())
    if pairs == 0:
        return None
    return float((counts * (counts - 1) / 2).sum() / pairs)


def krippendorff_alpha_nominal(votes_by_item: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Krippendorff's alpha for nominal data with missing votes (items with fewer than 2 votes dropped).

    Returns ``None`` when alpha is undefined: no item with 2+ votes, or every pairable vote has the same
    value (no expected disagreement).
    """
    counts = _count_matrix(votes_by_item)
    if counts.shape[0] == 0:
        return None
    m = counts.sum(axis=1, keepdims=True)
    # coincidences within items, each item weighted 1 / (m_u - 1)
    o = (counts / (m - 1)).T @ counts - np.diag((counts / (m - 1)).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    disagree_observed = n - np.trace(o)
    disagree_expected = n * n - float((n_c * n_c).sum())
    if disagree_expected <= 0:
        return None
    return float(1.0 - (n - 1) * disagree_observed / disagree_expected)


def reliability_summary(votes_by_item: Iterable[Sequence[Hashable | None]]) -> dict[str, Any]:
    """The human ceiling as a JSON-friendly dict.

    Returns ``{"pairwise_agreement": float | None, "krippendorff_alpha": float | None, "items": n items with
    2+ votes, "pairs": n pairs of votes on the same item}``.
    """
    items = list(votes_by_item)
    counts = _count_matrix(items)
    m = counts.sum(axis=1)
    return {
        "pairwise_agreement": pairwise_agreement(items),
        "krippendorff_alpha": krippendorff_alpha_nominal(items),
        "items": int(counts.shape[0]),
        "pairs": int((m * (m - 1) / 2).sum()),
    }


def majority(choices: Iterable[str]) -> str:
    """The verdict of one item's ``"a"``/``"b"``/``"tie"`` votes: the option with strictly the most votes;
    ``"tie"`` when two options are level at the top or there is no vote. The one rule of the benchmark freeze
    and of the exports' ``majority`` column. Raises ``ValueError`` for any other choice."""
    counts = {"a": 0, "b": 0, "tie": 0}
    for choice in choices:
        if choice not in counts:
            raise ValueError(f"a vote's choice is 'a', 'b' or 'tie', got {choice!r}")
        counts[choice] += 1
    top = max(counts.values())
    leaders = [c for c, n in counts.items() if n == top]
    if top == 0 or len(leaders) > 1:
        return "tie"
    return leaders[0]
