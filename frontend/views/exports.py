"""Pages for exports: a staff page to start an export of the preference dataset and follow its jobs."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from annotate.models import Campaign
from hpbench.exports import services
from hpbench.exports.models import ExportJob
from hpbench.exports.selectors.jobs import export_jobs_for_user
from hpbench.exports.selectors.params import LEVELS, ExportError, params_parse
from hpbench.exports.selectors.rows import rows_preview
from hpbench.exports.selectors.votes import vote_date_range
from hpbench.exports.writers import csv_cell
from hpbench.leaderboard.models import PreferenceBenchmark

PREVIEW_ROWS = 10


def _cell(value) -> str:
    """A preview cell: as the CSV export writes it, cut to 80 characters."""
    text = csv_cell(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _form_context(form: dict) -> dict:
    first, last = vote_date_range()
    return {
        "form": form,
        "first_day": first.isoformat() if first else "",
        "last_day": last.isoformat() if last else "",
        "formats": ExportJob.Format.choices,
        "levels": LEVELS,
        "campaigns": Campaign.objects.order_by("slug").values_list("slug", "name"),
        "benchmarks": [
            f"{name}:{version}"
            for name, version in PreferenceBenchmark.objects.order_by("name", "-version").values_list("name", "version")
        ],
    }


@require_http_methods(["GET", "POST"])
def exports_page(request: HttpRequest) -> HttpResponse:
    """Staff only (404 for anyone else): the export form and the latest jobs with progress and links.

    The form's "Preview" button (``action=preview``) shows the row count and the first rows without exporting.
    """
    if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
        raise Http404("No such page.")
    form: dict[str, Any] = {  # the submitted filters as typed (text, a list, booleans), shown again in the form
        "format": "parquet",
        "level": "votes",
        "campaigns": [],
        "benchmark": "",
        "since": "",
        "until": "",
        "include_excluded": False,
        "include_gold": True,
    }
    error = None
    preview = None
    if request.method == "POST":
        form.update(
            {
                "format": request.POST.get("format", ""),
                "level": request.POST.get("level", "votes"),
                "campaigns": request.POST.getlist("campaigns"),
                "benchmark": request.POST.get("benchmark", "").strip(),
                "since": request.POST.get("since", "").strip(),
                "until": request.POST.get("until", "").strip(),
                "include_excluded": "include_excluded" in request.POST,
                "include_gold": "include_gold" in request.POST,
            }
        )
        fmt = form["format"]
        try:
            params = params_parse(**{k: v for k, v in form.items() if k != "format"})
            if request.POST.get("action") == "preview":
                total, columns, rows = rows_preview(params, limit=PREVIEW_ROWS)
                preview = {
                    "total": total,
                    "columns": columns,
                    "rows": [[_cell(row[c]) for c in columns] for row in rows],
                }
            else:
                services.export_job_create(requested_by=request.user, fmt=fmt, params=params)
        except ExportError as exc:
            error = str(exc)
        else:
            if preview is None:
                return redirect("exports-page")
    jobs = list(export_jobs_for_user(request.user)[:20])
    active = any(j.status in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING) for j in jobs)
    context = {**_form_context(form), "jobs": jobs, "active": active, "error": error, "preview": preview}
    return render(request, "frontend/exports/page.html", context, status=400 if error else 200)


urlpatterns = [path("exports/", exports_page, name="exports-page")]
