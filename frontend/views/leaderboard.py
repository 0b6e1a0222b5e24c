"""Pages: the leaderboard per benchmark, and a researcher's submissions (list + form, detail)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from hpbench.leaderboard import selectors
from hpbench.leaderboard.demo_caption import demo_caption
from hpbench.leaderboard.plots import agreement_svg
from hpbench.leaderboard.services.submissions import (
    SubmissionError,
    submission_cancel,
    submission_create,
    submission_publish,
    submission_publishable,
    submission_refresh,
    submissions_counted_today,
    submissions_per_day,
)

COLUMNS = [  # (sort key, heading, higher is better)
    ("rank", "Rank", False),
    ("model", "Model", False),
    ("heldout", "Held-out agreement", True),
    ("above", "Gap to the row above", False),
    ("agreement", "All pairs", True),
    ("loo", "vs leave-one-out majorities", True),
    ("preference_ratio", "Preference ratio", True),
    ("recall", "Recall", True),
    ("votes", "Arena: wins of own sets, votes (rating)", False),
    ("submitted", "Submitted", False),
]


def leaderboard_index(request: HttpRequest) -> HttpResponse:
    benchmarks = list(selectors.benchmarks_active())
    if len(benchmarks) == 1:
        return redirect("leaderboard-board", name=benchmarks[0].name)
    return render(request, "frontend/leaderboard/index.html", {"benchmarks": benchmarks})


def leaderboard_board(request: HttpRequest, name: str) -> HttpResponse:
    try:
        benchmark = selectors.benchmark_get(name, request.GET.get("version"))
    except selectors.NotFound:
        raise Http404("No such benchmark.") from None
    sort = request.GET.get("sort", selectors.DEFAULT_SORT)
    board = selectors.leaderboard(benchmark=benchmark, user=request.user, sort=sort)
    preference_model = selectors.preference_model_board(benchmark=benchmark, user=request.user)
    board = selectors.leaderboard_with_estimator(board, preference_model)
    current = board["sort"]
    headers = []
    for key, label, better in COLUMNS:
        if key == "recall":
            label = board["recall_label"]
        if key == "agreement" and board.get("agreement_estimator") == "ppi":
            label = "All pairs (prediction-powered)"
        if key not in selectors.SORT_KEYS:  # not sortable: a plain heading
            headers.append({"key": key, "label": label, "better": better, "next": None, "aria": None})
            continue
        active = current.lstrip("-") == key
        descending = current.startswith("-")
        next_sort = (key if descending else f"-{key}") if active else (f"-{key}" if better or key == "votes" else key)
        headers.append({"key": key, "label": label, "better": better, "next": next_sort,
                        "aria": ("descending" if descending else "ascending") if active else "none"})
    ceiling = board["human_ceiling"]["leave_one_out"]
    for row in board["rows"]:  # one cell per category column, in the columns' order
        row["category_cells"] = [(c, row["by_category"].get(c, {})) for c in board["categories"]]
        p = row.get("above_p_holm")
        row["above_p_text"] = "" if p is None else ("< 0.001" if p < 0.001 else f"= {p:.3f}")
    # The headline (held-out agreement), each model against the ceiling's leave-one-out majorities (○), the ceiling;
    # the preference ratio with its chance level on this benchmark.
    chance = board["benchmark"]["preference_ratio_chance"]

    def headline(**size: Any) -> str:
        return agreement_svg(board["rows"], ceiling=ceiling, key="heldout_agreement", label="Held-out agreement",
                             ceiling_key="loo_agreement", ceiling_label="human ceiling (leave-one-out)", **size)

    def ratio(**size: Any) -> str:
        return agreement_svg(board["rows"], ceiling=None, key="preference_ratio", label="Preference ratio (QuRe Eq. 9)",
                             chance=0.5 if chance is None else chance, id_prefix="ratio-plot", **size)

    return render(request, "frontend/leaderboard/board.html", {
        "svg_compact": mark_safe(headline(width=360, compact=True)),
        "ratio_svg": mark_safe(ratio()),  # built with html.escape
        "ratio_svg_compact": mark_safe(ratio(width=360, compact=True)),
        "n_columns": len(headers) + len(board["categories"]),
        "benchmark": benchmark,
        "board": board,
        "headers": headers,
        "others": selectors.benchmarks_active().exclude(pk=benchmark.pk),
        "collection_note": selectors.benchmark_collection_note(benchmark),
        "labels_note": selectors.benchmark_labels_note(benchmark),
        "svg": mark_safe(headline()),  # built with html.escape
        "demo_caption": demo_caption(benchmark=benchmark, rows=board["rows"]),
        "preference_model": preference_model,
    })


@login_required
@require_http_methods(["GET", "POST"])
def submissions_page(request: HttpRequest) -> HttpResponse:
    from models_zoo import VARIANTS
    from models_zoo.registry import uploadable_families

    form = {"family": "", "variant": "", "config": "", "description": "", "link": "", "name": "", "paper_url": "",
            "code_url": "", "licence": ""}
    identity = ("name", "paper_url", "code_url", "licence")
    if request.method == "POST":
        form.update({k: request.POST.get(k, "").strip() for k in form})
        error = None
        config: dict = {}
        if form["config"]:
            from hpbench.catalog.family_config import ConfigError, config_parse

            try:
                config = config_parse(form["config"])
            except ConfigError as exc:
                error = str(exc)
        upload = request.FILES.get("file")
        score_files = request.FILES.getlist("scores")
        if score_files:  # the authors' score files rather than a checkpoint
            from hpbench.leaderboard.score_submissions import score_submission_create

            try:
                submission = score_submission_create(owner=request.user, files=score_files,
                                                     description=form["description"], link=form["link"],
                                                     **{k: form[k] for k in identity})
            except SubmissionError as exc:
                error = str(exc)
            else:
                messages.success(request, f"Submission {submission.pk} received: its score files are being checked "
                                          "on a worker; this page shows the outcome.")
                return redirect("submission-detail", pk=submission.pk)
        elif error is None and upload is None:
            error = "file: choose a checkpoint to upload"
        if error is None:
            assert upload is not None  # without one (or score files) error was set above
            try:
                submission = submission_create(
                    owner=request.user, family=form["family"], variant=form["variant"], config=config,
                    file=upload, description=form["description"], link=form["link"],
                    vit_checkpoint=request.FILES.get("vit_checkpoint"), **{k: form[k] for k in identity},
                )
            except SubmissionError as exc:
                error = str(exc)
            else:
                messages.success(request, f"Submission {submission.pk} queued.")
                return redirect("submission-detail", pk=submission.pk)
        messages.error(request, error)
    from hpbench.catalog.family_config import researcher_keys
    from hpbench.catalog.models import BaseModel

    submissions = [submission_refresh(submission=s) for s in selectors.submissions_for_user(request.user)]
    scores = selectors.submissions_headline_scores(submissions)
    return render(request, "frontend/leaderboard/submissions.html", {
        "submissions": [(s, scores.get(s.model_id or 0, [])) for s in submissions],
        # Only what can be submitted: one checkpoint file, or a folder family's archive.
        "families": [(f.name, VARIANTS[f.name], f.folder_files) for f in uploadable_families()],
        "config_keys": [(f.name, researcher_keys(f.name)) for f in uploadable_families() if researcher_keys(f.name)],
        "base_models": BaseModel.objects.order_by("family", "name").values_list("name", "family"),
        "form": form,
        "quota_used": submissions_counted_today(owner=request.user),
        "quota": submissions_per_day(),
        "request_benchmarks": selectors.benchmarks_active(),
        "request_splits": selectors.request_splits(),
        "max_score_bytes": settings.HPBENCH_MAX_SCORE_FILE_BYTES,
    }, status=400 if request.method == "POST" else 200)


@login_required
def submission_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        submission = selectors.submission_get_for_user(request.user, pk)
    except selectors.NotFound:
        raise Http404("No such submission.") from None
    submission = submission_refresh(submission=submission)
    from hpbench.redact import researcher_text

    can_write = request.user.is_staff or submission.owner_id == request.user.pk
    return render(request, "frontend/leaderboard/submission.html", {
        "submission": submission,
        "log": submission.log if request.user.is_staff else researcher_text(submission.log),
        "scores": selectors.submission_scores(submission),
        "runs": selectors.submission_runs(submission),
        "score_files": selectors.submission_score_files(submission),
        "can_write": can_write,
        "publishable": submission_publishable(submission),
    })


@login_required
@require_POST
def submission_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    try:
        submission = selectors.submission_get_for_user(request.user, pk, write=True)
    except selectors.NotFound:
        raise Http404("No such submission.") from None
    try:
        if action == "cancel":
            submission_cancel(submission=submission)
            messages.success(request, "Submission cancelled.")
        elif action == "publish":
            submission_publish(submission=submission)
            messages.success(request, "Submission published: its scores are now public.")
        else:
            raise Http404("No such action.")
    except SubmissionError as exc:
        messages.error(request, str(exc))
    return redirect("submission-detail", pk=pk)


def model_page(request: HttpRequest, name: str) -> HttpResponse:
    """A model's page: its name, description, links and licence, its scores per benchmark and its retrieval runs;
    for the authors' scores, the files they uploaded. A private model: its owner and staff only (404 otherwise)."""
    from hpbench.catalog.selectors import model_entries_visible_to

    model = model_entries_visible_to(request.user).filter(name=name).first()
    if model is None:
        raise Http404("No such model.")
    return render(request, "frontend/leaderboard/model.html", selectors.model_page(model=model))


urlpatterns = [
    path("models/<slug:name>/", model_page, name="model-page"),
    path("leaderboard/", leaderboard_index, name="leaderboard-index"),
    path("leaderboard/<slug:name>/", leaderboard_board, name="leaderboard-board"),
    path("submissions/", submissions_page, name="submissions"),
    path("submissions/<int:pk>/", submission_page, name="submission-detail"),
    path("submissions/<int:pk>/<slug:action>", submission_action, name="submission-action"),
]
