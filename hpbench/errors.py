"""Error answers for requests no view answered: JSON under ``/api/`` (clients parse it), Django's pages elsewhere.

:func:`database_unavailable_middleware` answers a request whose database connection broke (a backend terminated,
the server restarting, SQLite busy past its timeout) with 503 and ``Retry-After`` instead of a 500.

Set as ``handler400``/``handler404``/``handler500`` in ``hpbench/urls.py``. A 400 raised outside a view (e.g.
``RequestDataTooBig`` when a form body passes ``DATA_UPLOAD_MAX_MEMORY_SIZE``, read by the CSRF check)
comes here: under ``/api/`` it is answered as JSON, 413 for a body over the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

log = logging.getLogger(__name__)

#: Seconds a client should wait before sending again a request the database could not serve.
RETRY_AFTER_SECONDS = 1


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def too_large_detail() -> str:
    """The 413 answer's ``detail`` for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
    return f"the request body is over the {limit:,}-byte limit (DATA_UPLOAD_MAX_MEMORY_SIZE)"


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's ``handler400``: it always passes the exception that ended the request."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": too_large_detail()}, status=413)
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return JsonResponse({"detail": "the request has too many fields or files"}, status=400)
    return JsonResponse({"detail": "bad request"}, status=400)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "not found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return JsonResponse({"detail": "server error"}, status=500)


def database_unavailable_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    """503 with ``Retry-After`` for a request that failed because its database connection broke.

    Connection health checks (``CONN_HEALTH_CHECKS``) replace a connection that dropped while idle; this covers
    one that drops while a request uses it. Its transaction was rolled back, or, if the connection broke during
    COMMIT, its outcome is unknown: a resend is safe where the write is idempotent (votes carry an idempotency
    key, leases are renewed by next-task). Other exceptions are left to Django.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        return get_response(request)

    def process_exception(request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        detail = "the database is unavailable for a moment; send the request again"
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if _is_api(request):
            return JsonResponse({"detail": detail}, status=503, headers=headers)
        return HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8", headers=headers)

    middleware.process_exception = process_exception  # type: ignore[attr-defined]
    return middleware
