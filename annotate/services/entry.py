"""Annotators entering a campaign: crowd links (hashed external ids), signed-in users, start positions."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from annotate import crowd, identity
from annotate.models import Annotator, Campaign, Comparison

_CROWD_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")


def _hash_external_id(source: str, external_id: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{source}:{external_id}".encode(), hashlib.sha256).hexdigest()


def _param(params: Mapping[str, str], name: str, *, required: bool = False) -> str:
    value = (params.get(name) or "").strip()
    if required and not value:
        raise PermissionDenied(f"the link lacks {name}")
    if value and not _CROWD_ID_RE.match(value):
        raise PermissionDenied(f"{name} must be 1-100 letters, digits, '-' or '_'")
    return value


def annotator_enter(
    *, campaign: Campaign, params: Mapping[str, str], user=None, client_ip: str | None = None
) -> Annotator:
    """Create or resume the pseudonymous annotator for a crowd link or a logged-in user.

    ``params`` are the query parameters: Prolific's ``PROLIFIC_PID``/``STUDY_ID``/``SESSION_ID`` or
    MTurk's ``workerId``/``assignmentId``/``hitId``/``turkSubmitTo``; without them a logged-in ``user``
    enters as themselves (a new account annotator is rate-limited as a new crowd identity is, staff excepted).
    The crowd id is stored only as an HMAC. The campaign's crowd guards apply
    (``annotate.crowd``): study and session required and pinned as configured, a session never shared by two
    worker ids, and new identities rate-limited per campaign and per ``client_ip`` (none: no IP limit).
    Raises ``PermissionDenied`` with a message when the campaign is not open, the link is malformed (or an
    MTurk preview), refused by a guard, or nobody is known; ``annotate.errors.TooManyEntries`` (429) past a rate
    limit.
    """
    if campaign.status != Campaign.Status.OPEN:
        raise PermissionDenied(f"campaign {campaign.slug!r} is not open for annotation")
    fields: dict[str, str] = {}
    required = campaign.require_crowd_session
    if params.get("PROLIFIC_PID"):
        source, external = Annotator.Source.PROLIFIC, _param(params, "PROLIFIC_PID", required=True)
        fields = {
            "study_id": _param(params, "STUDY_ID", required=required),
            "session_id": _param(params, "SESSION_ID", required=required),
        }
        study, session, session_field = fields["study_id"], fields["session_id"], "session_id"
    elif params.get("workerId"):
        source, external = Annotator.Source.MTURK, _param(params, "workerId", required=True)
        assignment_id = (params.get("assignmentId") or "").strip()
        if assignment_id == "ASSIGNMENT_ID_NOT_AVAILABLE":
            raise PermissionDenied("this is an MTurk preview: accept the HIT to start")
        submit_to = (params.get("turkSubmitTo") or "").strip()
        if submit_to and not submit_to.startswith("https://"):
            raise PermissionDenied("turkSubmitTo must be an https:// URL")
        fields = {
            "assignment_id": _param(params, "assignmentId", required=required),
            "hit_id": _param(params, "hitId", required=required),
            "submit_to": submit_to[:300],
        }
        study, session, session_field = fields["hit_id"], fields["assignment_id"], "assignment_id"
    elif user is not None and user.is_authenticated:
        return _annotator_for_user(campaign, user, client_ip)
    else:
        raise PermissionDenied("log in, or open the link from your crowd platform (it carries your worker id)")
    pinned = crowd.study_ids(campaign.crowd_study_ids)
    if pinned and study not in pinned:
        name = "STUDY_ID" if source == Annotator.Source.PROLIFIC else "hitId"
        raise PermissionDenied(f"this link's {name} is not this study's: open the link your study platform gives you")
    digest = _hash_external_id(source, external)
    annotator = Annotator.objects.filter(campaign=campaign, source=source, external_id_hash=digest).first()
    if annotator is None:
        if (
            session
            and Annotator.objects.filter(campaign=campaign, source=source, **{session_field: session})
            .exclude(external_id_hash=digest)
            .exists()
        ):
            name = "SESSION_ID" if source == Annotator.Source.PROLIFIC else "assignmentId"
            raise PermissionDenied(f"this link's {name} belongs to another participant")
        crowd.entry_allow(
            campaign_key=f"{campaign.pk}:{campaign.slug}", per_campaign=campaign.new_annotators_per_hour, ip=client_ip
        )
        try:
            with transaction.atomic():
                annotator = Annotator.objects.create(
                    campaign=campaign,
                    source=source,
                    external_id_hash=digest,
                    start_position=_start_position(campaign),
                    **fields,
                )
        except IntegrityError:  # a second tab of the same worker created it meanwhile
            annotator = Annotator.objects.get(campaign=campaign, source=source, external_id_hash=digest)
    else:
        changed = [name for name, value in fields.items() if value and getattr(annotator, name) != value]
        for name in changed:
            setattr(annotator, name, fields[name])
        if changed:
            annotator.save(update_fields=changed)
    return annotator


#: Per-annotator start of the pool scan: its own generator, seeded from the OS.
_START = random.Random()


def _start_position(campaign: Campaign) -> int:
    """A random serving position between the campaign's first and last, so new annotators do not all get the
    same first comparison (the pick scans the pool in serving order from here, then wraps around)."""
    from django.db.models import Max, Min

    bounds = Comparison.objects.filter(campaign=campaign).aggregate(low=Min("position"), high=Max("position"))
    if bounds["low"] is None:
        return 0
    return _START.randint(bounds["low"], bounds["high"])


def _annotator_for_user(campaign: Campaign, user, client_ip: str | None) -> Annotator:
    """The account's own annotator (one per account and campaign). Any account may annotate, but a new account
    annotator counts against the same per-IP and per-campaign rate limits as a new crowd identity (staff
    excepted), since accounts can be made as freely as crowd ids can be typed."""
    annotator = Annotator.objects.filter(campaign=campaign, user=user).first()
    if annotator is not None:
        return annotator
    if not user.is_staff:
        crowd.entry_allow(
            campaign_key=f"{campaign.pk}:{campaign.slug}", per_campaign=campaign.new_annotators_per_hour, ip=client_ip
        )
    try:
        with transaction.atomic():
            return Annotator.objects.create(
                campaign=campaign, user=user, source=Annotator.Source.ACCOUNT, start_position=_start_position(campaign)
            )
    except IntegrityError:
        return Annotator.objects.get(campaign=campaign, user=user)


def annotator_for_request(request, campaign: Campaign) -> Annotator:
    """The annotator this request acts as for ``campaign``; remembers it for the browser (``annotate.identity``).

    Crowd parameters in ``request.GET`` create or resume a crowd annotator (the entry guards of
    :func:`annotator_enter` apply, with the request's client IP); otherwise the one this browser entered as;
    otherwise the logged-in user's own. Raises ``PermissionDenied`` with a message (campaign not open,
    malformed or refused link, nobody known) or ``TooManyEntries``.
    """
    params = request.GET
    annotator: Annotator | None = None
    if params.get("PROLIFIC_PID") or params.get("workerId"):
        annotator = annotator_enter(
            campaign=campaign, params=params, user=request.user, client_ip=crowd.client_ip(request)
        )
    else:
        if campaign.status != Campaign.Status.OPEN:
            raise PermissionDenied(f"campaign {campaign.slug!r} is not open for annotation")
        known = identity.remembered(request).get(campaign.slug)
        if known is not None:
            annotator = Annotator.objects.filter(pk=known, campaign=campaign).first()
        if annotator is None:
            annotator = annotator_enter(
                campaign=campaign, params={}, user=request.user, client_ip=crowd.client_ip(request)
            )
    identity.remember(request, campaign.slug, annotator.pk)
    return annotator
