"""Pages for browsing the catalogue: the home page, queries, and one query with each model's top results."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import Resolver404, path, resolve

from hpbench.catalog.models import Dataset, Query
from hpbench.catalog.selectors import query_results_for_user
from hpbench.catalog.services import query_results_shown_to


def _submit_url() -> str:
    """The researchers' "Submit a model" page where it exists, else their submissions page."""
    try:
        resolve("/submit/")
    except Resolver404:
        return "/submissions/"
    return "/submit/"


def home(request: HttpRequest) -> HttpResponse:
    """The three ways in: try the voting page (the open try-it campaign, as a new anonymous participant),
    the leaderboard, and submitting a model; then the open studies and the datasets."""
    from annotate.selectors import open_campaigns

    datasets = Dataset.objects.annotate(n_queries=Count("queries", distinct=True)).order_by("name")
    try_slug = settings.HPBENCH_TRY_CAMPAIGN
    try_url = None
    if try_slug and open_campaigns().filter(slug=try_slug).exists():
        # A fresh participant and session per visit, in the study platform's link format the page accepts.
        pid, session = secrets.token_hex(8), secrets.token_hex(8)
        try_url = f"/annotate/{try_slug}/?PROLIFIC_PID=try-{pid}&STUDY_ID=try-it&SESSION_ID=try-{session}"
    return render(request, "frontend/catalog/home.html", {
        "datasets": datasets, "campaigns": open_campaigns(), "try_url": try_url, "submit_url": _submit_url(),
    })


def query_list(request: HttpRequest) -> HttpResponse:
    queries = Query.objects.select_related("dataset").order_by("dataset__name", "split", "id")
    dataset = request.GET.get("dataset")
    split = request.GET.get("split")
    if dataset:
        queries = queries.filter(dataset__name=dataset)
    if split:
        queries = queries.filter(split=split)
    page = Paginator(queries, 50).get_page(request.GET.get("page"))
    return render(request, "frontend/catalog/query_list.html", {
        "page": page, "datasets": Dataset.objects.order_by("name"), "dataset": dataset or "", "split": split or "",
    })


def query_detail(request: HttpRequest, query_id: int) -> HttpResponse:
    query = get_object_or_404(Query.objects.select_related("dataset", "reference", "target"), pk=query_id)
    hidden = not query_results_shown_to(user=request.user, query=query)
    return render(request, "frontend/catalog/query_detail.html", {
        "query": query, "hidden": hidden,
        "models": [] if hidden else query_results_for_user(user=request.user, query=query, k=10),
    })


urlpatterns = [
    path("", home, name="home"),
    path("queries/", query_list, name="query-list"),
    path("queries/<int:query_id>/", query_detail, name="query-detail"),
]
