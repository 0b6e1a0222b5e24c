"""Checks of untrusted text shared by the parsers, services and middleware: what PostgreSQL cannot store.

PostgreSQL refuses a NUL character in text (and ``\\u0000`` in jsonb), and no database driver can encode a
lone UTF-16 surrogate (``"\\ud800"`` in JSON) as UTF-8: either reaching the database is a 500. SQLite
would store them. Input is refused before that, with a message naming the field.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase, JsonResponse

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Deepest JSON nesting accepted anywhere (request bodies, configs): ours are at most a few levels deep.
JSON_MAX_DEPTH = 32


def text_problem(value: str) -> str | None:
    """What makes ``value`` unstorable ("contains a NUL character", "contains a lone surrogate ..."), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not valid Unicode text"


def json_problem(data, *, max_depth: int = JSON_MAX_DEPTH) -> str | None:
    """What makes parsed JSON ``data`` unacceptable, naming the place (``JSON string at $.a[2] contains a NUL
    character``, ``JSON nested deeper than 32 levels at $.x``), or None."""
    stack: list[tuple[object, tuple, int]] = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return f"JSON string at {_where(path)} {problem}"
        elif isinstance(value, dict | list):
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels at {_where(path)}"
            if isinstance(value, dict):
                for key, item in value.items():
                    problem = text_problem(key) if isinstance(key, str) else None
                    if problem:
                        return f"JSON key {key!r} at {_where(path)} {problem}"
                    stack.append((item, (*path, key), depth + 1))
            else:
                stack.extend((item, (*path, n), depth + 1) for n, item in enumerate(value))
    return None


def _where(path: tuple) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _bad_in_url(request: HttpRequest) -> bool:
    query = request.META.get("QUERY_STRING", "")
    return "\x00" in request.path_info or "\x00" in query or "%00" in query


def reject_nul_in_url_middleware(get_response):
    """Answers 400 to a request whose path or query string holds a NUL character (``%00``), before any view
    passes it to a database lookup (a 500 on PostgreSQL). JSON under ``/api/``, plain text elsewhere."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        if _bad_in_url(request):
            detail = "the URL contains a NUL character (%00)"
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": detail}, status=400)
            return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")
        return get_response(request)

    return middleware
