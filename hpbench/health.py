"""``GET /healthz``: database, broker and worker reachability as JSON, and when Celery beat last ran the reaper."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hpbench.celery import app as celery_app


def _check_database() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; report it, never raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_broker() -> dict:
    started = time.perf_counter()
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            if hasattr(channel, "client"):  # Redis connects lazily: make it answer
                channel.client.ping()
            transport = conn.transport_cls
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "transport": str(transport), "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_workers(timeout: float) -> dict:
    try:
        replies = celery_app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "workers": []}
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return {"ok": False, "error": f"no worker answered a ping within {timeout:g} s", "workers": []}
    return {"ok": True, "workers": names}


def _check_beat() -> dict:
    """When beat last ran the reaper (``default.jobs.reap``); ``ok`` False once that is three periods ago (or
    never): lost workers' jobs are then taken over only by the workers' own reaping (``worker/tasks/reaper.py``)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from hpbench.catalog.models import ReaperState

    try:
        state = ReaperState.objects.filter(pk=1).first() or ReaperState()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    beat_ran, ran = state.beat_ran_at, state.ran_at
    report = {"reaper_last_run": ran.isoformat() if ran else None,
              "beat_last_run": beat_ran.isoformat() if beat_ran else None}
    period = settings.HPBENCH_REAP_SECONDS
    if beat_ran is None or beat_ran < timezone.now() - timedelta(seconds=3 * period):
        return {"ok": False, "error": f"celery beat has not run the reaper in the last {3 * period} s "
                                      f"(is beat running?)", **report}
    return {"ok": True, **report}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with ``{"ok": true, ...}`` when the database, the broker and a worker answer, 503 naming what is down
    otherwise. ``beat`` reports when Celery beat last ran the reaper (``ok`` False when it is missing); it does
    not change the status code (the site serves without beat) but is listed in ``warnings``."""
    try:
        timeout = float(request.GET.get("timeout", 1.0))
    except ValueError:
        timeout = -1.0
    if not 0.1 <= timeout <= 10.0:  # NaN fails too
        return JsonResponse({"detail": "timeout must be a number of seconds from 0.1 to 10"}, status=400)
    checks = {"database": _check_database(), "broker": _check_broker()}
    checks["workers"] = (
        _check_workers(timeout=timeout)
        if checks["broker"]["ok"]
        else {"ok": False, "error": "broker unreachable", "workers": []}
    )
    ok = all(check["ok"] for check in checks.values())
    beat = _check_beat()
    warnings = [] if beat["ok"] else [f"beat: {beat['error']}"]
    return JsonResponse({"ok": ok, **checks, "beat": beat, "warnings": warnings}, status=200 if ok else 503)
