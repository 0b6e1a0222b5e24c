"""Vote-level rows: the votes the filters keep, one row per vote; the dates of the first and last vote."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from annotate.models import Vote
from hpbench.exports.selectors.hidden import hidden_comparison_ids
from hpbench.exports.selectors.lookups import DEFAULT_CHUNK, _chunks, _day_start, _Names
from hpbench.exports.selectors.params import ExportParams


def votes_queryset(params: ExportParams) -> QuerySet[Vote]:
    """The votes the filters keep (any campaign when none is named)."""
    qs = Vote.objects.all()
    if params.campaign_ids:
        qs = qs.filter(comparison__campaign_id__in=params.campaign_ids)
    if params.since:
        qs = qs.filter(created_at__gte=_day_start(params.since))
    if params.until:
        qs = qs.filter(created_at__lt=_day_start(params.until + dt.timedelta(days=1)))
    if not params.include_excluded:
        qs = qs.counted()
    if not params.include_gold:
        qs = qs.filter(comparison__is_gold=False)
    hidden = hidden_comparison_ids()
    if hidden:  # a hidden split's verdicts are never exported, nor the votes behind them
        qs = qs.exclude(comparison_id__in=hidden)
    return qs


def vote_rows(
    params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK, with_categories: bool = False
) -> Iterator[list[dict]]:
    """One dict per vote (keys of :data:`VOTE_COLUMNS`), in chunks of up to ``chunk_size``, by vote id.

    With ``with_categories`` each row also carries ``_category`` (see :func:`pair_rows`)."""
    names = _Names()
    qs = (
        votes_queryset(params)
        .order_by("pk")
        .values_list(
            "pk",
            "comparison_id",
            "annotator__pseudonym",
            "annotator__flagged",
            "choice",
            "rating_a",
            "rating_b",
            "irrelevant",
            "excluded",
            "time_ms",
            "created_at",
        )
    )
    for chunk in _chunks(qs.iterator(chunk_size=chunk_size), chunk_size):
        names.load_comparisons({r[1] for r in chunk})
        rows = []
        for pk, cid, pseudonym, flagged, choice, rating_a, rating_b, irrelevant, excluded, time_ms, created in chunk:
            c = names.comparisons[cid]
            rows.append(
                {
                    "vote_id": pk,
                    "campaign": c["campaign"],
                    "comparison_id": cid,
                    "dataset": c["dataset"],
                    "reference_image": c["reference_image"],
                    "captions": c["captions"],
                    "text": c["text"],
                    "target_image": c["target_image"],
                    "set_a_images": c["set_a_images"],
                    "set_b_images": c["set_b_images"],
                    "set_a_model": c["set_a_model"],
                    "set_b_model": c["set_b_model"],
                    "annotator": pseudonym,
                    "choice": choice,
                    "tie": choice == Vote.Choice.TIE,
                    "rating_a": rating_a,
                    "rating_b": rating_b,
                    "irrelevant": irrelevant,
                    "gold": c["gold"],
                    "excluded": bool(excluded or flagged),
                    "time_ms": time_ms,
                    "created_at": created,
                }
            )
            if with_categories:
                rows[-1]["_category"] = c["_category"]
        yield rows


def vote_date_range() -> tuple[dt.date | None, dt.date | None]:
    """The calendar days (project time zone) of the first and the last vote on the platform."""
    first = Vote.objects.order_by("created_at").values_list("created_at", flat=True).first()
    last = Vote.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    day = lambda t: timezone.localtime(t).date() if t is not None else None  # noqa: E731
    return day(first), day(last)
