"""Hidden splits (``PreferenceBenchmark.hidden_split_of``): their verdicts are never exported, so neither are the
votes of the comparisons they were frozen from."""

from __future__ import annotations

from hpbench.leaderboard.models import BenchmarkPair


def hidden_comparison_ids() -> list[int]:
    """Ids of the campaign comparisons whose pairs sit in a hidden split (source key ``comparison:<id>``)."""
    keys = BenchmarkPair.objects.filter(
        benchmark__hidden_split_of__isnull=False, source_key__startswith="comparison:"
    ).values_list("source_key", flat=True)
    return sorted({int(k.split(":", 1)[1]) for k in keys})
