"""Reads of the annotation feature that are more than a one-line filter."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from annotate.errors import CampaignNotFound
from annotate.models import Annotator, Campaign, Comparison


def _scalar(queryset, expression):
    return Coalesce(
        Subquery(queryset.values("campaign").annotate(v=expression).values("v")[:1], output_field=IntegerField()),
        Value(0),
    )


def campaign_list_with_progress() -> QuerySet[Campaign]:
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
