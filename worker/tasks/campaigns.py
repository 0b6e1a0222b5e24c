"""Campaign tasks: building a campaign's comparisons (thin, idempotent)."""

from __future__ import annotations

import logging

from celery import shared_task

from annotate.errors import BuildError

log = logging.getLogger(__name__)


@shared_task(name="default.campaigns.build")
def build(campaign_id: int) -> int:
    """Build a queued campaign's comparisons; returns how many exist (0 when nothing was claimed).

    Claims the work by moving ``build_status`` from queued to running in one conditional UPDATE, so a
    redelivered or duplicate message does nothing. Progress is written to the row as it goes.
    """
    from annotate.models import Campaign
    from annotate.services import campaign_build

    claimed = Campaign.objects.filter(pk=campaign_id, build_status=Campaign.BuildStatus.QUEUED).update(
        build_status=Campaign.BuildStatus.RUNNING, build_progress=0.0, build_error=""
    )
    if not claimed:
        log.info("campaign %s: build not queued, nothing to do", campaign_id)
        return 0
    campaign = Campaign.objects.select_related("dataset").get(pk=campaign_id)

    def progress(fraction: float) -> None:
        Campaign.objects.filter(pk=campaign_id).update(build_progress=min(1.0, max(0.0, fraction)))

    try:
        count = campaign_build(campaign=campaign, progress=progress)
    except BuildError as exc:
        Campaign.objects.filter(pk=campaign_id).update(build_status=Campaign.BuildStatus.FAILED, build_error=str(exc))
        return 0
    except Exception as exc:
        Campaign.objects.filter(pk=campaign_id).update(
            build_status=Campaign.BuildStatus.FAILED, build_error=f"{type(exc).__name__}: {exc}"
        )
        raise
    Campaign.objects.filter(pk=campaign_id).update(build_status=Campaign.BuildStatus.BUILT, build_progress=1.0)
    return count
