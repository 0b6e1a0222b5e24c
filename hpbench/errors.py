"""Error answers for requests no view answered: JSON under ``/api/`` (clients parse it), Django's pages elsewhere.

Set as ``handler400``/``handler404``/``handler500`` in ``hpbench/urls.py``. A 400 raised outside a view (e.g.
``RequestDataTooBig`` when a form body passes ``DATA_UPLOAD_MAX_MEMORY_SIZE``, read by the CSRF check)
comes here: under ``/api/`` it is answered as JSON, 413 for a body over the limit.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
        detail = f"the request body is over the {limit:,}-byte limit (DATA_UPLOAD_MAX_MEMORY_SIZE)"
        return JsonResponse({"detail": detail}, status=413)
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
