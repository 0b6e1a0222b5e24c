"""Comparison-level rows: one row per comparison with a kept vote, with its aggregates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Avg, Count, Q, QuerySet

from annotate.models import Comparison, counted_votes_q
from annotate.quality import pairwise_agreement
from hpbench.exports.selectors.hidden import hidden_comparison_ids
from hpbench.exports.selectors.lookups import DEFAULT_CHUNK, _chunks, _day_start, _Names
from hpbench.exports.selectors.params import ExportParams
from hpbench.metrics.reliability import majority


def comparisons_queryset(params: ExportParams) -> QuerySet[Comparison]:
    """Comparisons with aggregates over the votes the filters keep; only those with a kept vote."""
    q = Q()
    if params.since:
        q &= Q(votes__created_at__gte=_day_start(params.since))
    if params.until:
        q &= Q(votes__created_at__lt=_day_start(params.until + dt.timedelta(days=1)))
    if not params.include_excluded:
        q &= counted_votes_q("votes__")
    qs = Comparison.objects.all()
    if params.campaign_ids:
        qs = qs.filter(campaign_id__in=params.campaign_ids)
    if not params.include_gold:
        qs = qs.filter(is_gold=False)
    hidden = hidden_comparison_ids()
    if hidden:  # a hidden split's verdicts are never exported
        qs = qs.exclude(pk__in=hidden)
    return qs.annotate(
        n_votes=Count("votes", filter=q),
        n_a=Count("votes", filter=q & Q(votes__choice="a")),
        n_b=Count("votes", filter=q & Q(votes__choice="b")),
        n_tie=Count("votes", filter=q & Q(votes__choice="tie")),
        n_irrelevant=Count("votes", filter=q & Q(votes__irrelevant=True)),
        mean_a=Avg("votes__rating_a", filter=q),
        mean_b=Avg("votes__rating_b", filter=q),
    ).filter(n_votes__gt=0)


def comparison_rows(params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[dict]]:
    """One dict per comparison (keys of :data:`COMPARISON_COLUMNS`), in chunks, by comparison id."""
    names = _Names()
    qs = (
        comparisons_queryset(params)
        .order_by("pk")
        # The names come from comparisons_queryset's .annotate(), which its return type does not carry.
        .values_list(  # type: ignore[misc]
            "pk", "n_votes", "n_a", "n_b", "n_tie", "n_irrelevant", "mean_a", "mean_b",
            "stop_reason", "selection_round", "selection_pi", "selection_weight",
        )
    )
    for chunk in _chunks(qs.iterator(chunk_size=chunk_size), chunk_size):
        names.comparisons.clear()
        names.load_comparisons(r[0] for r in chunk)
        rows = []
        for pk, n, n_a, n_b, n_tie, n_irr, mean_a, mean_b, stop_reason, selection_round, pi, weight in chunk:
            c = names.comparisons[pk]
            labels = ["a"] * n_a + ["b"] * n_b + ["tie"] * n_tie
            rows.append(
                {
                    "comparison_id": pk,
                    **{
                        k: c[k]
                        for k in (
                            "campaign",
                            "dataset",
                            "reference_image",
                            "captions",
                            "text",
                            "target_image",
                            "set_a_images",
                            "set_b_images",
                            "set_a_model",
                            "set_b_model",
                            "gold",
                        )
                    },
                    "votes": n,
                    "votes_a": n_a,
                    "votes_b": n_b,
                    "ties": n_tie,
                    "irrelevant": n_irr,
                    "mean_rating_a": float(mean_a) if mean_a is not None else None,
                    "mean_rating_b": float(mean_b) if mean_b is not None else None,
                    "majority": majority(labels),
                    "agreement": pairwise_agreement({pk: labels}),
                    "stop_reason": stop_reason,
                    "selection_round": selection_round,
                    "selection_pi": pi,
                    "selection_weight": weight,
                }
            )
        yield rows
