"""Query parameters of the leaderboard API, validated: a bad one is a 400 naming it, never a silent default."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request

from hpbench.leaderboard import selectors


class BenchmarkParams(serializers.Serializer):
    """The query parameters of a benchmark's leaderboard and request file; a bad one is a 400 naming it."""

    version = serializers.IntegerField(required=False, min_value=1, max_value=selectors.MAX_VERSION,
                                       help_text="Benchmark version (default: the active one).")


class LeaderboardParams(BenchmarkParams):
    sort = serializers.CharField(
        required=False, default=selectors.DEFAULT_SORT, max_length=40,
        help_text="Sort key, `-` first for descending: " + ", ".join(selectors.SORT_KEYS)
        + f"; an unknown key sorts by the default ({selectors.DEFAULT_SORT}).")


def benchmark_params(request: Request, params: type[BenchmarkParams] = BenchmarkParams) -> dict:
    """The validated query parameters (``ValidationError``, a 400 naming the parameter, when one is bad)."""
    # A plain dict: DRF reads an empty value in a QueryDict as "not given" (``?version=`` would pass).
    form = params(data=request.query_params.dict())
    form.is_valid(raise_exception=True)
    return form.validated_data
