"""Crowd entry guards: pinned study ids, entry rate limits, and completion codes per annotator.

Nothing proves that a ``PROLIFIC_PID`` or ``workerId`` in a link is real: anyone can type one. What a campaign
can check is cheap, and it all lives here:

- the link carries the platform's study and session (Prolific ``STUDY_ID``/``SESSION_ID``, MTurk
  ``hitId``/``assignmentId``) when the campaign requires them, the study is one the campaign pins
  (``Campaign.crowd_study_ids``), and a session is not reused by another worker id;
- new crowd identities are rate-limited per client IP (``HPBENCH_CROWD_NEW_PER_IP_HOUR``) and per campaign
  (``Campaign.new_annotators_per_hour``), counted in Django's cache: Redis in production (``CACHE_URL``), so
  every web process shares the counts; the default per-process memory cache counts per process;
- with ``Campaign.completion_code_per_annotator`` each annotator is shown their own completion code,
  derived (HMAC under ``SECRET_KEY``) from the campaign's code and the annotator, so a code read by a made-up
  identity proves nothing for another; staff see each annotator's code (admin, staff API) to verify it.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

from annotate.errors import TooManyEntries

_WINDOW_S = 3600


def client_ip(request) -> str:
    """The caller's IP: ``REMOTE_ADDR``, unless it is a trusted proxy (``HPBENCH_TRUSTED_PROXIES``) and
    ``HPBENCH_CLIENT_IP_HEADER`` (e.g. ``X-Forwarded-For``) is set: then the header's last address that is not a
    trusted proxy (each proxy appends the address it came from; entries before are the client's own words).
    A client that reaches the server directly cannot choose its address by sending the header."""
    remote = request.META.get("REMOTE_ADDR", "")[:64]
    header = settings.HPBENCH_CLIENT_IP_HEADER
    if not header or not _trusted(remote):
        return remote
    value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    for entry in reversed(value.split(",")):
        entry = entry.strip()[:64]
        if not entry:
            continue
        try:
            ipaddress.ip_address(entry)
        except ValueError:
            return remote  # not an address: the chain cannot be read further back than the proxy itself
        if not _trusted(entry):
            return entry
        remote = entry
    return remote


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(settings.HPBENCH_TRUSTED_PROXIES)))


@functools.lru_cache(maxsize=8)
def _networks(items: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _count(key: str) -> int:
    """Count one event in the current hour's window of ``key``; returns the count including it."""
    bucket = f"hpbench:crowd-entry:{key}:{int(time.time() // _WINDOW_S)}"
    cache.add(bucket, 0, timeout=_WINDOW_S + 60)
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.set(bucket, 1, timeout=_WINDOW_S + 60)
        return 1


def entry_allow(*, campaign_key: str, per_campaign: int, ip: str | None) -> None:
    """Count a new crowd identity from ``ip`` in the campaign (``campaign_key``: its id and slug, never reused
    by another campaign); :class:`TooManyEntries` (429) past a limit.

    Limits are per hour; 0 turns one off. Only new identities count: a worker resuming theirs never does.
    """
    per_ip = settings.HPBENCH_CROWD_NEW_PER_IP_HOUR
    if ip and per_ip and _count(f"ip:{ip}") > per_ip:
        raise TooManyEntries(
            "too many new participants from your network in the last hour: please try again later"
        )
    if per_campaign and _count(f"campaign:{campaign_key}") > per_campaign:
        raise TooManyEntries("this study is taking too many new participants right now: please try again later")


def completion_code_for(*, base: str, campaign_id: int, annotator_id: int) -> str:
    """The annotator's own completion code: ``BASE-XXXXXXXXXX`` (10 base32 characters of an HMAC of the
    campaign and annotator), or just the characters without a base code."""
    digest = salted_hmac("annotate.crowd.completion", f"{campaign_id}:{annotator_id}", algorithm="sha256").digest()
    own = base64.b32encode(digest[:10]).decode()[:10]
    return f"{base}-{own}" if base else own


def study_ids(value: str) -> set[str]:
    """The pinned study ids of ``Campaign.crowd_study_ids`` (comma or whitespace separated)."""
    return {part for part in value.replace(",", " ").split() if part}
