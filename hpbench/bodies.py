"""Request bodies: the largest each path accepts, refused with 413 by their ``Content-Length`` before any byte is read.

Every path has a limit: the checkpoint upload paths (``HPBENCH_UPLOAD_PATHS``) take a checkpoint
(``HPBENCH_MAX_CHECKPOINT_BYTES``) plus the form; every other path at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` plus
the form's room, files included, so an anonymous multipart body to ``/healthz`` or a login page cannot fill the
web server's temporary folder. :class:`hpbench.wsgi.Application` applies it to every request before Django
sees it (the annotators' short stack too); ``upload_limit_middleware`` applies it again for handlers built
without it (Django's test client), and the upload handler cuts off a body whose files outgrow it while they
stream in (a request that lies about its length).
"""

from __future__ import annotations

import json

from django.conf import settings

#: Room for the form fields and multipart boundaries beside the files themselves.
FORM_OVERHEAD_BYTES = 1024 * 1024
DEFAULT_UPLOAD_PATHS = ("/api/leaderboard/submissions", "/submissions/")


def upload_paths() -> list[str]:
    """Paths (PATH_INFO, exact) of the endpoints that take checkpoint and score-file uploads."""
    return list(getattr(settings, "HPBENCH_UPLOAD_PATHS", DEFAULT_UPLOAD_PATHS))


def file_limit(path: str) -> int:
    """The most bytes of files a request to ``path`` may carry."""
    if path in upload_paths():
        return int(settings.HPBENCH_MAX_CHECKPOINT_BYTES)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def body_limit(path: str) -> int:
    """The largest request body ``path`` accepts: its files' limit plus the form."""
    return file_limit(path) + FORM_OVERHEAD_BYTES


def declared_length(meta) -> int | None:
    """The request's ``Content-Length`` (0 when absent), or None when it is not a number."""
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


def refusal(meta) -> tuple[int, dict] | None:
    """``(status, JSON body)`` refusing the request by its headers alone, or None to let it in."""
    length = declared_length(meta)
    if length is None:
        return 400, {"detail": "Content-Length: not a number"}
    path = meta.get("PATH_INFO", "")
    limit = body_limit(path)
    if length <= limit:
        return None
    if path in upload_paths():
        detail = (f"request body of {length} bytes is over the limit of {limit} bytes (a checkpoint of at most "
                  f"{file_limit(path)} bytes plus the form)")
        return 413, {"detail": detail, "limit_bytes": file_limit(path)}
    return 413, {"detail": f"request body of {length} bytes is over this path's limit of {limit} bytes",
                 "limit_bytes": limit}


def wsgi_refusal(environ, start_response) -> list[bytes] | None:
    """Answer a WSGI request that :func:`refusal` refuses (its body unread), or None."""
    refused = refusal(environ)
    if refused is None:
        return None
    status, body = refused
    content = json.dumps(body).encode()
    reason = "Request Entity Too Large" if status == 413 else "Bad Request"
    start_response(f"{status} {reason}", [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(content)))])
    return [content]
