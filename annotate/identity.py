"""Which annotators a browser entered as: ``{campaign slug: annotator id}`` in a signed cookie.

Crowd workers have no account and no Django session: the next-task and vote requests (most of a
campaign's traffic) read who is asking from this cookie, without a session lookup in the database or a
cache. The cookie is signed with ``SECRET_KEY`` (a changed or forged one counts as absent), HttpOnly,
SameSite=Lax, Secure where the session cookie is, and expires with the session cookie's age. Logged-in
users keep their Django session for who they are; this cookie only remembers their annotators too.
A login or logout on the browser ends it (:func:`forget_on_auth_change`): the next person there does not vote as
the previous one.

:func:`remembered` reads it (once per request) and :func:`remember` records an entry on the request;
:func:`middleware` (in ``settings.MIDDLEWARE``) writes the updated cookie on the response, as Django's
session middleware saves a changed session.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponseBase

COOKIE = "hpbench_annotators"
_SALT = "annotate.identity"
_ON_REQUEST = "_hpbench_annotators"
_CHANGED = "_hpbench_annotators_changed"


def _parse(value: str) -> dict[str, int]:
    data = json.loads(value)
    if not isinstance(data, dict) or not all(
        isinstance(slug, str) and isinstance(pk, int) and not isinstance(pk, bool) for slug, pk in data.items()
    ):
        raise ValueError("not a {slug: annotator id} object")
    return data


def _django(request) -> HttpRequest:
    """Django's request behind a DRF one: what the middleware sees."""
    return getattr(request, "_request", request)


def remembered(request: HttpRequest) -> dict[str, int]:
    """``{campaign slug: annotator id}`` this browser entered as (a copy); empty without a valid cookie."""
    request = _django(request)
    known = getattr(request, _ON_REQUEST, None)
    if known is None:
        try:
            # Without a default a missing cookie raises KeyError; the stubs still say ``str | None``.
            value = request.get_signed_cookie(COOKIE, salt=_SALT, max_age=settings.SESSION_COOKIE_AGE)
            known = _parse(value) if value is not None else {}
        except (KeyError, signing.BadSignature, ValueError):
            known = {}
        setattr(request, _ON_REQUEST, known)
    return dict(known)


def remember(request: HttpRequest, slug: str, annotator_id: int) -> None:
    """Record that this browser acts as ``annotator_id`` in campaign ``slug`` (the middleware writes it)."""
    request = _django(request)
    known = remembered(request)
    if known.get(slug) != annotator_id:
        known[slug] = annotator_id
        setattr(request, _ON_REQUEST, known)
        setattr(request, _CHANGED, True)


def forget(request: HttpRequest) -> None:
    """Forget every annotator this browser entered as (the middleware deletes the cookie)."""
    request = _django(request)
    setattr(request, _ON_REQUEST, {})
    setattr(request, _CHANGED, True)


def forget_on_auth_change(sender, request=None, **kwargs) -> None:
    """``user_logged_in`` / ``user_logged_out`` receiver (connected in ``AnnotateConfig.ready``): who uses the
    browser changed, so the annotator identities it held end."""
    if request is not None:
        forget(request)


def _write(request: HttpRequest, response: HttpResponseBase) -> None:
    if not remembered(request):
        response.delete_cookie(COOKIE, samesite="Lax")
        return
    response.set_signed_cookie(
        COOKIE,
        json.dumps(remembered(request), separators=(",", ":")),
        salt=_SALT,
        max_age=settings.SESSION_COOKIE_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def middleware(get_response):
    """Sets the cookie on the response of a request during which :func:`remember` changed it."""

    def remember_on_response(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        if getattr(request, _CHANGED, False):
            _write(request, response)
        return response

    return remember_on_response
