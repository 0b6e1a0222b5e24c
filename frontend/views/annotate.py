"""The annotation voting page: ``/annotate/<campaign slug>/``.

The page is a server-rendered skeleton; ``frontend/static/frontend/annotate.js`` fetches tasks and posts
votes through the annotate API (``/api/annotate/``), the same API any other client uses. Everything on the
page is anonymous: no campaign name (admins may name campaigns after models), no model names or ids.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from annotate import onboarding
from annotate.errors import TooManyEntries
from annotate.models import Campaign
from annotate.services.entry import annotator_for_request

STUDY_TITLE = "Image comparison study"
# Where hpbench/urls.py mounts annotate/urls.py.
API_PREFIX = "/api/annotate/"

# The paper's scale ("Does not match at all" ... "Matches very well").
RATING_SCALE = [
    (1, "Does not match at all"),
    (2, "Matches a little"),
    (3, "Partly matches"),
    (4, "Mostly matches"),
    (5, "Matches very well"),
]

# How long the end screen shows before it follows the campaign's completion URL.
REDIRECT_DELAY_MS = 2500


def _unavailable(request: HttpRequest, *, heading: str, message: str, status: int, login: bool = False) -> HttpResponse:
    context = {
        "study_title": STUDY_TITLE,
        "heading": heading,
        "message": message,
        "show_login": login,
        "login_url": f"{settings.LOGIN_URL}?next={request.path}",
    }
    return render(request, "frontend/annotate/unavailable.html", context, status=status)


@never_cache
@ensure_csrf_cookie
def campaign_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The voting page of campaign ``slug``.

    A notice page for an unknown campaign (404, never Django's debug page), when it is not open (403 draft,
    410 closed) or when the request identifies no annotator (403: no crowd parameters, not logged in).
    Otherwise enters the annotator (created or resumed, remembered in a signed cookie) and renders the page,
    opening on the campaign's first screen (instructions, worked examples, consent) until the annotator has
    read it once.
    """
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        return _unavailable(
            request,
            heading="We could not find this study",
            message="The link may be mistyped or out of date. Please open the link your study platform gives you.",
            status=404,
        )
    if campaign.status == Campaign.Status.CLOSED:
        return _unavailable(
            request,
            heading="This study has ended",
            message="Thank you for your interest. This study is closed and takes no more answers.",
            status=410,
        )
    if campaign.status != Campaign.Status.OPEN:
        return _unavailable(
            request,
            heading="This study is not open yet",
            message="Please come back later, or open the link the study platform gives you once it starts.",
            status=403,
        )
    try:
        annotator = annotator_for_request(request, campaign)
    except TooManyEntries as exc:
        return _unavailable(
            request, heading="Please try again in a few minutes", message=f"{exc.detail[:1].upper()}{exc.detail[1:]}.",
            status=exc.status,
        )
    except PermissionDenied as exc:
        reason = str(exc)
        return _unavailable(
            request,
            heading="We could not tell who you are",
            message=(f"{reason[:1].upper()}{reason[1:]}." if reason else "")
            + " Please open this page from the link your study platform gives you (it carries your participant"
            " id), or log in with your account.",
            status=403,
            login=not request.user.is_authenticated,
        )

    config = {
        "nextUrl": f"{API_PREFIX}campaigns/{campaign.slug}/next",
        "voteUrl": f"{API_PREFIX}votes",
        "quota": campaign.per_person_quota,
        "redirectDelayMs": REDIRECT_DELAY_MS,
        "replaceUrl": f"{API_PREFIX}votes/replace",
        "onboardedUrl": f"{API_PREFIX}campaigns/{campaign.slug}/onboarded",
        "onboarding": onboarding.needs_onboarding(annotator=annotator),
        "consent": bool(campaign.consent_text.strip()),
    }
    context = page_context(campaign, config)
    context.update({
        "show_onboarding": config["onboarding"],
        # The first screen's facts and worked example (read only while it is shown).
        "estimated_minutes": onboarding.estimated_minutes(campaign=campaign) if config["onboarding"] else None,
        "example": onboarding.examples_shown(campaign=campaign) if config["onboarding"] else None,
        "contact": campaign.contact,
    })
    return render(request, "frontend/annotate/page.html", context)


def campaign_options(campaign: Campaign) -> dict[str, bool]:
    """The answer options the page offers, as the next-task API sends them."""
    return {"tie": campaign.allow_tie, "ratings": campaign.ask_ratings, "irrelevant": campaign.ask_irrelevant}


def page_context(campaign: Campaign, config: dict) -> dict:
    """What ``frontend/annotate/page.html`` needs besides the first screen: the voting page and the staff
    preview (``config["preview"]``: one task rendered by the same script, recording nothing) share it."""
    return {
        "study_title": STUDY_TITLE,
        "instructions_html": onboarding.markdown_html(campaign.instructions) if campaign.instructions.strip() else "",
        "consent_html": onboarding.markdown_html(campaign.consent_text) if campaign.consent_text.strip() else "",
        "show_onboarding": False,
        "quota": campaign.per_person_quota,
        "options": campaign_options(campaign),
        "config": config,
        "sides": [("left", "A"), ("right", "B")],
        "scale": RATING_SCALE,
    }


urlpatterns = [
    # Any text, not only a slug: a mistyped link still gets the friendly page, never a bare 404.
    path("annotate/<str:slug>/", campaign_page, name="annotate-page"),
]
