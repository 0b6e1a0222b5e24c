"""A campaign's lifecycle: created, its build queued, its status changed."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotate.models import Campaign, Comparison
from hpbench import dispatch
from hpbench.catalog.models import Dataset, ModelEntry


def campaign_create(
    *,
    slug: str,
    name: str,
    dataset: Dataset,
    models: list[ModelEntry],
    created_by=None,
    pool_models: list[ModelEntry] | tuple[ModelEntry, ...] = (),
    **options,
) -> Campaign:
    """Create a draft campaign comparing ``models`` (at least two) on ``dataset``; ``pool_models`` also make
    sets for its pairs but are not the campaign's scored models (:attr:`Campaign.pool_models`).

    ``options`` are other :class:`Campaign` fields (split, set_size, num_queries, votes_per_pair, ...).
    Raises ``ValueError`` for fewer than two distinct models.
    """
    if len({m.pk for m in models}) < 2:
        raise ValueError("a campaign compares at least two different models")
    if options.get("adaptive_overlap") and options.get("min_votes_per_pair", 2) > options.get("votes_per_pair", 3):
        raise ValueError("min_votes_per_pair must be at most votes_per_pair with adaptive overlap")
    if options.get("pair_selection", "random") not in ("random", "informative"):
        raise ValueError(f"pair_selection must be 'random' or 'informative', got {options['pair_selection']!r}")
    with transaction.atomic():
        campaign = Campaign.objects.create(slug=slug, name=name, dataset=dataset, created_by=created_by, **options)
        campaign.models.set(models)
        campaign.pool_models.set(pool_models)
    return campaign


def campaign_build_enqueue(*, campaign: Campaign) -> bool:
    """Mark the campaign queued for building and dispatch the Celery task after commit; a build still queued gets
    its message again (it may have been lost; a duplicate is harmless: the worker's claim is a conditional UPDATE).

    Returns False (and enqueues nothing) when a build is running.
    """
    now = timezone.now()
    rows = Campaign.objects.filter(pk=campaign.pk)
    changed = rows.filter(build_status=Campaign.BuildStatus.QUEUED).update(heartbeat_at=now) or (
        rows.exclude(build_status__in=[Campaign.BuildStatus.QUEUED, Campaign.BuildStatus.RUNNING])
        .update(build_status=Campaign.BuildStatus.QUEUED, build_error="", build_progress=0.0, heartbeat_at=now)
    )
    if changed:
        dispatch.task_send_on_commit(dispatch.CAMPAIGN_BUILD, campaign.pk)
    return bool(changed)


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Open, close or reopen a campaign. Opening requires a built campaign (``ValueError`` otherwise)."""
    if status not in Campaign.Status.values:
        raise ValueError(f"unknown campaign status {status!r} (expected one of {Campaign.Status.values})")
    if status == Campaign.Status.OPEN and not Comparison.objects.filter(campaign=campaign).exists():
        raise ValueError(f"campaign {campaign.slug!r} has no comparisons yet: build it before opening it")
    Campaign.objects.filter(pk=campaign.pk).update(status=status, updated_at=timezone.now())
    campaign.status = status
    return campaign
