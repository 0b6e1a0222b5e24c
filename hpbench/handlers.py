"""The web process's WSGI application: Django's handler, with a shorter middleware stack for the annotators' hot path.

Each middleware costs every request a layer of Python calls. The next-task and vote requests are most of
the traffic of an annotation campaign (200 annotators voting every half second) and are JSON answers to
annotators: they need the security headers, the session and the user, and nothing else of the page stack.
Their views check the CSRF token themselves (``annotate.api``), there are no messages, static files,
frames or trailing slashes to handle (:func:`content_length_middleware` keeps the one thing of
CommonMiddleware they need). For one vote (next-task + vote, called in-process and counted with
callgrind) the short stack ran 8% fewer instructions: 4.91M against 5.35M.

Requests to the routes named in ``settings.HOT_ROUTES`` (``"namespace:name"``, looked up in the URL conf when
the application starts, so the URL conf stays the one definition of their paths) go through
``settings.HOT_PATH_MIDDLEWARE``; every other request through ``settings.MIDDLEWARE``, as usual. An API request
announcing a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (not a multipart upload) is answered the JSON 413 before
either stack, whatever DEBUG says.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.urls import URLPattern, URLResolver, get_resolver

from hpbench import bodies


def content_length_middleware(get_response):
    """Sets Content-Length, as CommonMiddleware does for the pages: without it a keep-alive answer is chunked."""

    def middleware(request):
        response = get_response(request)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response

    return middleware


class _HandlerWithMiddleware(WSGIHandler):
    """Django's WSGI handler, its stack built from the given middleware list instead of settings.MIDDLEWARE."""

    def __init__(self, middleware: list[str]) -> None:
        self._middleware = list(middleware)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the stack from settings.MIDDLEWARE; swap the list in for that one call (start-up time,
        # before any request is served).
        pages = settings.MIDDLEWARE
        settings.MIDDLEWARE = self._middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = pages


def route_patterns(names: list[str], urlconf: str | None = None) -> dict[str, str]:
    """The full-path regular expression (PATH_INFO without its leading ``/``) of each named route, as Django's
    resolver matches it: the prefixes of the ``include()``s leading to the route, then the route's own pattern.

    Raises ``ImproperlyConfigured`` naming any route the URL conf does not have."""
    wanted = set(names)
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespace: tuple[str, ...]) -> None:
        for entry in patterns:
            piece = entry.pattern.regex.pattern.removeprefix("^")
            if isinstance(entry, URLResolver):
                inner = (*namespace, entry.namespace) if entry.namespace else namespace
                walk(entry.url_patterns, prefix + piece, inner)
            elif isinstance(entry, URLPattern) and entry.name:
                name = ":".join((*namespace, entry.name))
                if name in wanted and name not in found:  # the first match wins, as in resolution
                    found[name] = prefix + piece

    walk(get_resolver(urlconf).url_patterns, "", ())
    missing = [name for name in names if name not in found]
    if missing:
        raise ImproperlyConfigured(
            f"settings.HOT_ROUTES names route(s) the URL conf does not have: {', '.join(missing)}"
        )
    return found


def _without_group_names(pattern: str) -> str:
    # Two routes may capture groups of the same name; one alternation of them may not.
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


class Application:
    """Routes the hot routes (``settings.HOT_ROUTES``, by name) to the short stack, every other path to the pages;
    first refuses a body over its path's limit (:mod:`hpbench.bodies`)."""

    def __init__(self) -> None:
        self.pages = WSGIHandler()
        self.hot = _HandlerWithMiddleware(settings.HOT_PATH_MIDDLEWARE)
        patterns = route_patterns(list(settings.HOT_ROUTES))
        self._hot_path = re.compile("/(?:" + "|".join(_without_group_names(p) for p in patterns.values()) + ")")

    def handler_for(self, path: str) -> WSGIHandler:
        return self.hot if self._hot_path.fullmatch(path) else self.pages

    def __call__(self, environ, start_response):
        # Every path's body limit, by Content-Length, before either stack reads a byte (hpbench/bodies.py).
        refused = bodies.wsgi_refusal(environ, start_response)
        if refused is not None:
            return refused
        path = environ.get("PATH_INFO", "")
        if path.startswith("/api/") and _body_over_limit(environ):
            return _too_large(start_response)
        return self.handler_for(path)(environ, start_response)


def _body_over_limit(environ: dict) -> bool:
    """Whether the request announces a body (other than a multipart upload, whose files have limits of their own)
    over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: Django would raise ``RequestDataTooBig`` when it is read, which with
    DEBUG on becomes an HTML 400 page instead of ``handler400``'s JSON 413 (``hpbench/errors.py``)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = environ.get("CONTENT_LENGTH") or ""
    return (limit is not None and length.isdigit() and int(length) > limit
            and not environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"))


def _too_large(start_response) -> list[bytes]:
    from hpbench.errors import too_large_detail

    body = json.dumps({"detail": too_large_detail()}).encode()
    start_response("413 Request Entity Too Large", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
    ])
    return [body]
