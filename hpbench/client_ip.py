"""The address a request came from, as far as the deployment's reverse proxies can be trusted."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """``REMOTE_ADDR``; behind ``HPBENCH_TRUSTED_PROXIES`` reverse proxies that each append the address they
    were reached from to ``X-Forwarded-For``, the address the outermost one saw (what a client writes in the
    header itself is never trusted)."""
    proxies = settings.HPBENCH_TRUSTED_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR")
