"""The first screen of a campaign: its instructions, worked example, duration, contact and consent, rendered
safely, read once per annotator.

Admins write the instructions and the consent statement in Markdown. They are rendered with markdown-it-py's
CommonMark rules with raw HTML turned off (any HTML in the text is shown as text) and links limited to
http(s) and mailto, so an admin's text can never run script on annotators' pages.
"""

from __future__ import annotations

import math

from django.db import transaction
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from annotate import aliases
from annotate.errors import ConsentRequired
from annotate.models import Annotator, Campaign, CampaignImage, Vote
from hpbench.catalog.models import Image

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_SAFE_LINK = ("http://", "https://", "mailto:")


def _validate_link(url: str) -> bool:
    return url.lower().startswith(_SAFE_LINK) or url.startswith(("/", "#"))


_MARKDOWN.validateLink = _validate_link  # type: ignore[method-assign]  # markdown-it-py's documented hook


def markdown_html(text: str) -> SafeString:
    """``text`` (Markdown) as HTML safe to put in a page: raw HTML escaped, only http(s)/mailto/relative links."""
    return mark_safe(_MARKDOWN.render(text or ""))  # noqa: S308 - html disabled: markdown-it escapes every tag


def needs_onboarding(*, annotator: Annotator) -> bool:
    """Whether the annotator still has to see the campaign's first screen."""
    return annotator.onboarded_at is None


def annotator_onboard(*, annotator: Annotator, campaign: Campaign, consent: bool) -> Annotator:
    """Record that the annotator read the first screen (and accepted the consent, where the campaign has one).

    Idempotent: the first time is kept. Raises :class:`ConsentRequired` when the campaign has a consent
    statement and ``consent`` is not true.
    """
    if campaign.consent_text.strip() and consent is not True:
        raise ConsentRequired("tick the consent box to take part: the study needs your consent to start")
    if annotator.onboarded_at is None:
        now = timezone.now()
        Annotator.objects.filter(pk=annotator.pk, onboarded_at__isnull=True).update(onboarded_at=now)
        annotator.onboarded_at = now
    return annotator


#: Seconds per vote assumed for the estimated duration while a campaign has no timed votes yet.
DEFAULT_SECONDS_PER_VOTE = 12
EXAMPLE_KINDS = ("good", "partial", "poor")


def estimated_minutes(*, campaign: Campaign) -> int | None:
    """How long the study takes one annotator: the campaign's own figure, else its quota times the median time
    per vote so far (:data:`DEFAULT_SECONDS_PER_VOTE` before any), rounded up; None without a quota."""
    if campaign.estimated_minutes:
        return campaign.estimated_minutes
    if not campaign.per_person_quota:
        return None
    timed = Vote.objects.filter(comparison__campaign=campaign, time_ms__isnull=False, excluded=False)
    count = timed.count()
    median_ms: int = DEFAULT_SECONDS_PER_VOTE * 1000
    if count:
        median_ms = timed.order_by("time_ms").values_list("time_ms", flat=True)[count // 2] or median_ms
    return max(1, math.ceil(campaign.per_person_quota * median_ms / 60_000))


def campaign_examples_set(
    *, campaign: Campaign, reference: int, text: str, good: list[int], partial: list[int], poor: list[int]
) -> Campaign:
    """Set the first screen's worked example: a reference image, a requested change and images that are good,
    partial and poor matches (ids of the campaign's dataset's images). The images get the campaign's opaque
    tokens, as task images do. Raises ``ValueError`` naming an image that is not in the dataset."""
    ids = [reference, *good, *partial, *poor]
    known = set(Image.objects.filter(dataset_id=campaign.dataset_id, pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"example images {unknown} are not images of the campaign's dataset")
    if not text.strip():
        raise ValueError("the example needs its requested change (text)")
    with transaction.atomic():
        aliases.campaign_tokens(campaign_id=campaign.pk, image_ids=ids)
        campaign.examples = {"reference": reference, "text": text.strip(), "good": list(good),
                             "partial": list(partial), "poor": list(poor)}
        campaign.save(update_fields=["examples"])
    return campaign


def examples_shown(*, campaign: Campaign) -> dict | None:
    """The worked example as the first screen shows it (image URLs by token, never names), or None."""
    example = campaign.examples or {}
    if not example.get("reference"):
        return None
    ids = [example["reference"], *(i for kind in EXAMPLE_KINDS for i in example.get(kind, []))]
    tokens = dict(
        CampaignImage.objects.filter(campaign=campaign, image_id__in=ids).values_list("image_id", "token")
    )
    if example["reference"] not in tokens:
        return None
    return {
        "reference": aliases.image_url(tokens[example["reference"]]),
        "text": example.get("text", ""),
        "kinds": [
            (kind, [aliases.image_url(tokens[i]) for i in example.get(kind, []) if i in tokens])
            for kind in EXAMPLE_KINDS
        ],
    }
