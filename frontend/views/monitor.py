"""Staff pages of a campaign: the monitoring page (progress, reliability, annotators with approve/exclude)
and the preview of a comparison as an annotator sees it (nothing leased, nothing recorded).

Anonymous visitors are sent to the login page; logged-in non-staff users get 403.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from annotate import selectors
from annotate.errors import CampaignNotFound
from annotate.models import Annotator, Campaign
from annotate.plots import progress_svg
from annotate.services.review import annotator_review
from frontend.views.annotate import campaign_options, page_context

# Prolific fills these placeholders with the participant's, study's and session's ids.
PROLIFIC_QUERY = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
ACTIONS = {"approve": Annotator.Review.APPROVED, "exclude": Annotator.Review.EXCLUDED, "reset": Annotator.Review.NONE}


def _staff_campaign(request: HttpRequest, slug: str) -> Campaign | HttpResponse:
    """The campaign for a staff member; a redirect to the login page for anonymous visitors; 403 for anyone
    else; 404 for an unknown slug (staff only learn whether a campaign exists)."""
    if not request.user.is_authenticated:
        return redirect(f"{settings.LOGIN_URL}?next={quote(request.get_full_path())}")
    if not (request.user.is_active and request.user.is_staff):
        raise PermissionDenied("staff only")
    try:
        return selectors.campaign_get(slug=slug)
    except CampaignNotFound:
        raise Http404("No such campaign.") from None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


@never_cache
@require_GET
def monitor_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Progress over time, agreement and alpha with 95% intervals, and the annotators of one campaign."""
    campaign = _staff_campaign(request, slug)
    if isinstance(campaign, HttpResponse):
        return campaign
    monitor = selectors.campaign_monitor(campaign=campaign)
    page_url = request.build_absolute_uri(f"/annotate/{campaign.slug}/")
    figures = monitor.figures
    context = {
        "campaign": campaign,
        "monitor": monitor,
        "figures": figures,
        "reliability": monitor.reliability,
        "chart": mark_safe(  # built with html.escape
            progress_svg(monitor.buckets, unit=monitor.bucket, wanted=figures["votes_wanted"])
        ),
        "progress_pct": _pct(figures["progress"]),
        "prolific_url": f"{page_url}?{PROLIFIC_QUERY}",
        "mturk_url": page_url,
        "annotators": monitor.annotators,
        "gold_bar": _pct(campaign.gold_min_accuracy),
    }
    return render(request, "frontend/monitor/page.html", context)


@require_POST
def annotator_action(request: HttpRequest, slug: str, annotator_id: int, action: str) -> HttpResponse:
    """Approve, exclude or reset (back to the gold check) one annotator of the campaign; back to the page."""
    campaign = _staff_campaign(request, slug)
    if isinstance(campaign, HttpResponse):
        return campaign
    if action not in ACTIONS:
        raise Http404("No such action.")
    annotator = Annotator.objects.filter(pk=annotator_id, campaign=campaign).first()
    if annotator is None:
        raise Http404("No such annotator in this campaign.")
    annotator = annotator_review(annotator=annotator, decision=ACTIONS[action])
    done = {"approve": "approved", "exclude": "excluded", "reset": "back to the gold check"}[action]
    state = "left out" if annotator.flagged else "counted"
    messages.success(request, f"{annotator.pseudonym}: {done}; their votes are {state}.")
    return redirect(f"/campaigns/{campaign.slug}/monitor/#annotators")


@never_cache
@require_GET
def preview_page(request: HttpRequest, slug: str) -> HttpResponse:
    """One comparison of the campaign laid out as the voting page shows it, for staff: no lease is taken and
    the buttons record nothing. ``?comparison=ID`` picks one; otherwise a random one."""
    campaign = _staff_campaign(request, slug)
    if isinstance(campaign, HttpResponse):
        return campaign
    wanted = request.GET.get("comparison")
    if wanted and not (wanted.isdigit() and len(wanted) <= 18):
        raise Http404("No such comparison in this campaign.")
    comparison_id = int(wanted) if wanted else None
    comparison = selectors.campaign_preview_comparison(campaign=campaign, comparison_id=comparison_id)
    if comparison is None and comparison_id is not None:
        raise Http404("No such comparison in this campaign.")
    if comparison is None:
        return render(request, "frontend/monitor/preview.html", {"campaign": campaign, "comparison": None})
    # The voting page itself (same template and script), fed this comparison and recording nothing.
    sets = {
        side: [{"url": f"/images/{image_id}", "alt": f"Set {letter}, image {i} of {len(ids)}"}
               for i, image_id in enumerate(ids, start=1)]
        for side, letter, ids in (("left", "A", _as_shown(comparison, "a")), ("right", "B", _as_shown(comparison, "b")))
    }
    task = {
        "lease": "preview",
        "reference": {"url": f"/images/{comparison.reference_image_id}", "alt": "Reference image"},
        "text": comparison.text,
        "sets": sets,
        "options": campaign_options(campaign),
        "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
    }
    config = {"preview": task, "quota": campaign.per_person_quota, "onboarding": False, "redirectDelayMs": 0,
              "nextUrl": "preview:next", "voteUrl": "preview:vote", "replaceUrl": "preview:replace",
              "onboardedUrl": "preview:onboarded"}
    context = page_context(campaign, config)
    context.update({"preview": {"campaign": campaign, "comparison": comparison}})
    return render(request, "frontend/annotate/page.html", context)


def _as_shown(comparison, side: str) -> list[int]:
    """A set's image ids in the order annotators see them (``shown["order"]`` with ``shuffle_sets``)."""
    images = getattr(comparison, f"set_{side}_images")
    order = (comparison.shown or {}).get("order", {}).get(side)
    return [images[i] for i in order] if order else list(images)


urlpatterns = [
    path("campaigns/<slug:slug>/monitor/", monitor_page, name="campaign-monitor"),
    path(
        "campaigns/<slug:slug>/monitor/annotators/<int:annotator_id>/<slug:action>",
        annotator_action,
        name="campaign-annotator-action",
    ),
    path("campaigns/<slug:slug>/preview/", preview_page, name="campaign-preview"),
]
