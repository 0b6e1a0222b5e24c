"""The first screen of a campaign: its instructions and consent, rendered safely, read once per annotator.

Admins write the instructions and the consent statement in Markdown. They are rendered with markdown-it-py's
CommonMark rules with raw HTML turned off (any HTML in the text is shown as text) and links limited to
http(s) and mailto, so an admin's text can never run script on annotators' pages.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from annotate.errors import ConsentRequired
from annotate.models import Annotator, Campaign

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
