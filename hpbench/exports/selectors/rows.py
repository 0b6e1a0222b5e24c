"""The rows of an export's level (pairs, comparisons or votes), their count and a preview."""

from __future__ import annotations

from collections.abc import Iterator

from hpbench.exports.selectors.columns import COLUMNS
from hpbench.exports.selectors.comparisons import comparison_rows, comparisons_queryset
from hpbench.exports.selectors.lookups import DEFAULT_CHUNK
from hpbench.exports.selectors.pairs import pair_rows
from hpbench.exports.selectors.params import ExportParams
from hpbench.exports.selectors.votes import vote_rows, votes_queryset
from hpbench.leaderboard.models import BenchmarkPair


def rows_total(params: ExportParams) -> int:
    """How many rows the export will have (for progress)."""
    level = params.effective_level
    if level == "pairs":
        return BenchmarkPair.objects.filter(benchmark_id=params.benchmark_id).count()
    if level == "comparisons":
        return comparisons_queryset(params).count()
    return votes_queryset(params).count()


def rows_iter(
    params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK, with_categories: bool = False
) -> Iterator[list[dict]]:
    """The chunks of the export's level (``with_categories``: see :func:`vote_rows`; not for comparisons)."""
    level = params.effective_level
    if level == "pairs":
        return pair_rows(params, chunk_size=chunk_size, with_categories=with_categories)
    if level == "comparisons":
        return comparison_rows(params, chunk_size=chunk_size)
    return vote_rows(params, chunk_size=chunk_size, with_categories=with_categories)


def rows_preview(params: ExportParams, *, limit: int = 10) -> tuple[int, list[str], list[dict]]:
    """What an export would hold: ``(row count, column names, the first `limit` rows)``."""
    level = params.effective_level
    first = next(iter(rows_iter(params, chunk_size=max(1, limit))), [])
    return rows_total(params), [c[0] for c in COLUMNS[level]], first[:limit]
