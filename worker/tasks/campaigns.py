"""Campaign tasks: building a campaign's comparisons, and the periodic quality check of open ones (thin,
idempotent)."""

from __future__ import annotations

import logging

from celery import shared_task

from annotate.errors import BuildError

log = logging.getLogger(__name__)


@shared_task(name="default.campaigns.build")
def build(campaign_id: int) -> int:
    """Build a queued campaign's comparisons; returns how many exist (0 when nothing was claimed).

    Claims the build (:func:`worker.claims.job_claim`: queued, or running under a lost worker) in one
    conditional UPDATE, so a duplicate message does nothing while the build's worker lives, and keeps its
    heartbeat while it runs (the build is idempotent: a takeover creates only what is missing). Progress is
    written to the row as it goes; the end is written only while the build is still this worker's.
    """
    from annotate.models import Campaign
    from annotate.services.campaign_build import campaign_build
    from worker import claims

    owner = claims.worker_identity()
    if not claims.job_claim(model=Campaign, pk=campaign_id, owner=owner,
                            reset={"build_progress": 0.0, "build_error": ""}):
        log.info("campaign %s: build not queued, nothing to do", campaign_id)
        return 0
    campaign = Campaign.objects.select_related("dataset").get(pk=campaign_id)
    mine = Campaign.objects.filter(pk=campaign_id, build_status=Campaign.BuildStatus.RUNNING, claimed_by=owner)

    def progress(fraction: float) -> None:
        mine.update(build_progress=min(1.0, max(0.0, fraction)))

    with claims.heartbeat(model=Campaign, pk=campaign_id, owner=owner):
        try:
            count = campaign_build(campaign=campaign, progress=progress)
        except BuildError as exc:
            mine.update(build_status=Campaign.BuildStatus.FAILED, build_error=str(exc))
            return 0
        except Exception as exc:
            mine.update(build_status=Campaign.BuildStatus.FAILED, build_error=f"{type(exc).__name__}: {exc}")
            raise
    mine.update(build_status=Campaign.BuildStatus.BUILT, build_progress=1.0)
    return count


@shared_task(name="default.campaigns.quality", acks_late=False, ignore_result=True)
def quality() -> dict[str, int]:
    """Run quality control (:func:`annotate.quality.quality_refresh`: the gold bar and the steering test) on every
    open campaign; run by Celery beat every ``HPBENCH_QUALITY_SECONDS``. Returns ``{slug: annotators flagged}``."""
    from annotate.models import Campaign
    from annotate.quality import quality_refresh

    return {
        campaign.slug: len(quality_refresh(campaign=campaign))
        for campaign in Campaign.objects.filter(status=Campaign.Status.OPEN).order_by("pk")
    }
