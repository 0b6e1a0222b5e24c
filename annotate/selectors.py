"""Reads of the annotation feature that are more than a one-line filter."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncHour, TruncMinute
from django.db.models.functions.datetime import TruncBase
from django.utils import timezone

from annotate.errors import CampaignNotFound
from annotate.models import Annotator, Campaign, Comparison, Vote

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


def _scalar(queryset, expression):
    return Coalesce(
        Subquery(queryset.values("campaign").annotate(v=expression).values("v")[:1], output_field=IntegerField()),
        Value(0),
    )


class CampaignProgress(TypedDict):
    """The counts :func:`campaign_list_with_progress` annotates each campaign with."""

    n_comparisons: int
    n_complete: int
    n_votes: int
    n_annotators: int


def campaign_list_with_progress() -> QuerySet[WithAnnotations[Campaign, CampaignProgress]]:
    """Campaigns with ``n_comparisons``, ``n_complete``, ``n_votes`` and ``n_annotators`` (one query)."""
    comparisons = Comparison.objects.filter(campaign=OuterRef("pk"))
    return (
        Campaign.objects.select_related("dataset")
        .annotate(
            n_comparisons=_scalar(comparisons, Count("pk")),
            n_complete=_scalar(
                comparisons.filter(Q(stop_reason__gt="") | Q(votes_count__gte=OuterRef("votes_per_pair"))), Count("pk")
            ),
            n_votes=_scalar(comparisons, Sum("votes_count")),
            n_annotators=_scalar(Annotator.objects.filter(campaign=OuterRef("pk")), Count("pk")),
        )
        .order_by("-created_at")
    )


def campaign_get(*, slug: str) -> Campaign:
    """The campaign with this slug, or :class:`CampaignNotFound`."""
    campaign = Campaign.objects.select_related("dataset").filter(slug=slug).first()
    if campaign is None:
        raise CampaignNotFound(f"no campaign {slug!r}")
    return campaign


def open_campaigns() -> QuerySet[Campaign]:
    """Campaigns open for annotation, newest first."""
    return Campaign.objects.filter(status=Campaign.Status.OPEN).order_by("-created_at")


def query_in_unfinished_campaign(*, query_id: int) -> bool:
    """Whether a campaign that is not closed (draft or open) compares result sets of this query.

    While it is, the query's model results and target stay hidden from everyone but staff
    (:func:`hpbench.catalog.selectors.query_results_hidden_from`): annotators could match a set to a model.
    """
    return Comparison.objects.filter(query_id=query_id).exclude(campaign__status=Campaign.Status.CLOSED).exists()


def query_in_campaign(*, query_id: int) -> bool:
    """Whether any campaign, closed ones included, compares result sets of this query (its results then stay
    hidden from everyone but staff for good: :func:`hpbench.catalog.selectors.query_results_hidden_from`)."""
    return Comparison.objects.filter(query_id=query_id).exists()


# --- Campaign monitoring (staff) ------------------------------------------------------------------

#: A vote faster than this is implausible for comparing two sets of images (flagged on the monitoring page
#: unless the campaign sets its own minimum).
FAST_MEDIAN_MS = 1500
#: Longest series of hourly buckets drawn; longer campaigns are drawn per day (shorter ones per minute or ten).
MAX_HOURLY_BUCKETS = 24 * 7
CHOICES = ("a", "b", "tie")


@dataclass(frozen=True)
class VoteBucket:
    """Votes recorded in one hour (or day) and all votes up to its end."""

    start: dt.datetime
    votes: int
    cumulative: int


@dataclass(frozen=True)
class AnnotatorRow:
    """One line of the monitoring page's annotator table."""

    annotator_id: int
    pseudonym: str
    source: str
    votes: int
    gold_votes: int
    gold_correct: int
    gold_accuracy: float | None
    median_time_ms: float | None
    agreement_with_majority: float | None
    flagged: bool
    review: str
    flags: tuple[str, ...]
    # The steering test (annotate.quality.steering_figures): the model their votes favour most, and the
    # family-wise p-value of that (None: no informative vote yet).
    favoured_model: str = ""
    steering_p: float | None = None


@dataclass(frozen=True)
class CampaignMonitor:
    campaign: Campaign
    figures: dict
    reliability: dict
    buckets: list[VoteBucket]
    bucket: str  # "hour" or "day"
    annotators: list[AnnotatorRow] = field(default_factory=list)


def _bucket_unit(span: dt.timedelta) -> tuple[str, type[TruncBase], dt.timedelta]:
    """The bucket for a campaign whose votes span ``span``: a few to a few dozen bars, on round times."""
    if span <= dt.timedelta(minutes=90):
        return "minute", TruncMinute, dt.timedelta(minutes=1)
    if span <= dt.timedelta(hours=6):
        return "10 minutes", TruncMinute, dt.timedelta(minutes=10)
    if span <= dt.timedelta(hours=MAX_HOURLY_BUCKETS):
        return "hour", TruncHour, dt.timedelta(hours=1)
    return "day", TruncDay, dt.timedelta(days=1)


def campaign_vote_buckets(*, campaign: Campaign) -> tuple[str, list[VoteBucket]]:
    """Votes per bucket from the first vote to the last (empty buckets included), with the running total.

    The bucket follows the time the votes span: a minute (up to 90 minutes), 10 minutes (up to 6 hours), an
    hour (up to :data:`MAX_HOURLY_BUCKETS` hours), else a day. Returns ``(unit, buckets)``; no vote: ``("hour", [])``.
    """
    votes = Vote.objects.filter(comparison__campaign=campaign)
    span = votes.order_by().values_list("created_at", flat=True)
    first, last = span.order_by("created_at").first(), span.order_by("-created_at").first()
    if first is None or last is None:
        return "hour", []
    unit, trunc, step = _bucket_unit(last - first)
    tz = timezone.get_current_timezone()
    counts: dict[dt.datetime, int] = {}
    for row in votes.annotate(start=trunc("created_at", tzinfo=tz)).values("start").annotate(n=Count("pk")):
        start = row["start"]
        if unit == "10 minutes":  # minutes counted by the database, folded into tens here
            start = start.replace(minute=start.minute - start.minute % 10)
        counts[start] = counts.get(start, 0) + row["n"]
    buckets: list[VoteBucket] = []
    total = 0
    at, end = min(counts), max(counts)
    while at <= end:
        n = counts.get(at, 0)
        total += n
        buckets.append(VoteBucket(start=at, votes=n, cumulative=total))
        # Step in local wall time so a daylight-saving change keeps days on midnight.
        at = timezone.make_aware(timezone.make_naive(at, tz) + step, tz) if unit == "day" else at + step
    return unit, buckets


def campaign_vote_counts(*, campaign: Campaign) -> dict[int, dict[str, int]]:
    """Per non-gold comparison with a counted vote: how many counted votes chose a, b and tie."""
    rows = (
        Vote.objects.counted()
        .filter(comparison__campaign=campaign, comparison__is_gold=False)
        .values("comparison_id", "choice")
        .annotate(n=Count("pk"))
    )
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["comparison_id"], dict.fromkeys(CHOICES, 0))[row["choice"]] = row["n"]
    return out


def campaign_reliability(*, campaign: Campaign, rounds: int = 1000, seed: int = 0) -> dict:
    """Pairwise agreement and nominal Krippendorff's alpha over the campaign's non-gold comparisons (counted
    votes only), each with a 95% percentile bootstrap interval over comparisons
    (:func:`hpbench.metrics.reliability_intervals.reliability_with_intervals`)."""
    import numpy as np

    from hpbench.metrics.reliability_intervals import reliability_with_intervals

    counts = campaign_vote_counts(campaign=campaign)
    matrix = np.array([[c[k] for k in CHOICES] for c in counts.values()], dtype=np.int64).reshape(-1, len(CHOICES))
    return reliability_with_intervals(matrix, rounds=rounds, seed=seed)


def _flags(row, *, campaign: Campaign, review: str, fast_ms: int, steering=None, model: str = "") -> tuple[str, ...]:
    from annotate.quality import STEERING_EXCLUDE_P, STEERING_FLAG_P

    flags = []
    steered = steering is not None and steering.p_adjusted < STEERING_FLAG_P
    if review == Annotator.Review.EXCLUDED:
        flags.append("excluded by staff")
    elif review == Annotator.Review.APPROVED:
        flags.append("approved by staff")
    elif row.flagged and not (steered and steering.p_adjusted < STEERING_EXCLUDE_P):
        flags.append("under the gold bar: votes excluded")
    if steered:
        excluded = steering.p_adjusted < STEERING_EXCLUDE_P and row.flagged
        flags.append(
            f"favours {model}: {steering.observed} of {steering.votes} votes for it where the others predict "
            f"{steering.expected:.1f} (p = {steering.p_adjusted:.2g}){': votes excluded' if excluded else ''}"
        )
    if (
        row.gold_votes >= max(1, campaign.gold_min_votes)
        and row.gold_accuracy is not None
        and row.gold_accuracy < campaign.gold_min_accuracy
        and review
    ):
        flags.append("under the gold bar")
    if row.median_time_ms is not None and row.median_time_ms < fast_ms:
        flags.append(f"fast: median under {fast_ms / 1000:g} s")
    if row.too_fast_votes:
        flags.append(f"{row.too_fast_votes} too fast")
    return tuple(flags)


def campaign_annotator_rows(*, campaign: Campaign) -> list[AnnotatorRow]:
    """Every annotator of the campaign with their quality figures (:func:`annotate.quality.annotator_figures`)
    and flags, most votes first."""
    from annotate.quality import annotator_figures, steering_figures

    steering = steering_figures(campaign=campaign)
    model_names = dict(campaign.models.values_list("pk", "name"))
    extra = {
        pk: (source, review)
        for pk, source, review in Annotator.objects.filter(campaign=campaign).values_list("pk", "source", "review")
    }
    fast_ms = int(getattr(campaign, "min_vote_ms", 0) or FAST_MEDIAN_MS)
    rows = []
    for f in annotator_figures(campaign=campaign):
        source, review = extra.get(f.annotator_id, ("", ""))
        test = steering.get(f.annotator_id)
        model = model_names.get(test.model, str(test.model)) if test else ""
        rows.append(
            AnnotatorRow(
                annotator_id=f.annotator_id,
                pseudonym=f.pseudonym,
                source=source,
                votes=f.votes,
                gold_votes=f.gold_votes,
                gold_correct=f.gold_correct,
                gold_accuracy=f.gold_accuracy,
                median_time_ms=f.median_time_ms,
                agreement_with_majority=f.agreement_with_majority,
                flagged=f.flagged,
                review=review,
                flags=_flags(f, campaign=campaign, review=review, fast_ms=fast_ms, steering=test, model=model),
                favoured_model=model,
                steering_p=test.p_adjusted if test else None,
            )
        )
    rows.sort(key=lambda r: (-r.votes, r.annotator_id))
    return rows


def campaign_monitor(*, campaign: Campaign) -> CampaignMonitor:
    """Everything the staff monitoring page shows for ``campaign``."""
    from annotate.quality import campaign_figures

    unit, buckets = campaign_vote_buckets(campaign=campaign)
    return CampaignMonitor(
        campaign=campaign,
        figures=campaign_figures(campaign=campaign),
        reliability=campaign_reliability(campaign=campaign),
        buckets=buckets,
        bucket=unit,
        annotators=campaign_annotator_rows(campaign=campaign),
    )


def campaign_preview_comparison(*, campaign: Campaign, comparison_id: int | None = None) -> Comparison | None:
    """A comparison of ``campaign`` for staff to look at as an annotator would (``comparison_id``, else a
    random non-gold one, else any); None when the campaign has none. Reads only: no lease, no vote."""
    qs = Comparison.objects.filter(campaign=campaign)
    if comparison_id is not None:
        return qs.filter(pk=comparison_id).first()
    ids = list(qs.filter(is_gold=False).values_list("pk", flat=True)) or list(qs.values_list("pk", flat=True))
    if not ids:
        return None
    return qs.get(pk=random.SystemRandom().choice(ids))
