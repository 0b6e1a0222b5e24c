"""Pages for researchers: how to submit (public), sign-up, the API token, and a submission's log."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from hpbench.accounts import selectors as account_selectors
from hpbench.accounts import services as accounts
from hpbench.leaderboard import joblog, selectors
from hpbench.leaderboard.services.submissions import submission_refresh, submissions_per_day
from hpbench.redact import researcher_text


def _config_keys(family: str) -> list[dict[str, str]]:
    """The config keys a researcher may give for ``family`` (``hpbench.catalog.family_config``), in words."""
    from hpbench.catalog import family_config
    from hpbench.catalog.models import BaseModel

    rows = []
    for key in family_config.researcher_keys(family):
        if key == family_config.BASE_MODEL_KEY:
            names = list(BaseModel.objects.filter(family=family).values_list("name", flat=True))
            files = ", ".join(family_config.BASE_MODEL_PATH_KEYS[family])
            rows.append({"key": key, "accepts": "one of: " + ", ".join(names) if names else "none registered yet",
                         "help": f"server-side files registered by staff ({files})"})
            continue
        option = family_config.RESEARCHER_OPTIONS[family][key]
        kind = "whole number" if option.integer else "number"
        accepts = f"{kind} {option.minimum:g}–{option.maximum:g}" + (", or null" if option.nullable else "")
        rows.append({"key": key, "accepts": accepts, "help": option.help})
    return rows


def submit_guide(request: HttpRequest) -> HttpResponse:
    """What is scored and how, checkpoint formats and variants per family, score files, limits, accounts."""
    from models_zoo.registry import FAMILY_INFO

    benchmarks = selectors.benchmarks_active()
    # The worked example's benchmark: one on a dataset whose images come with the request files (the demo's).
    example = next((b for b in benchmarks if b.dataset.images_shareable), None)
    return render(request, "frontend/researchers/submit.html", {
        "families": [(info, _config_keys(info.name)) for info in FAMILY_INFO.values()],
        "benchmarks": benchmarks,
        "example_benchmark": example.name if example else "demo-campaign",
        "request_splits": selectors.request_splits(),
        "max_checkpoint_bytes": settings.HPBENCH_MAX_CHECKPOINT_BYTES,
        "max_score_bytes": settings.HPBENCH_MAX_SCORE_FILE_BYTES,
        "quota": submissions_per_day(),
        "signup": accounts.signup_mode(),
        "site": request.build_absolute_uri("/").rstrip("/"),
    })


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For staff to reach you about your account.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def clean_username(self) -> str:
        # Whether the name is taken is the service's to say (with approval: never); the form checks its shape only.
        return self.cleaned_data.get("username", "")

    def validate_unique(self) -> None:
        return None  # the model's unique username likewise: the service decides what to tell


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """``HPBENCH_SIGNUP``: off = 404; approval = the account waits for staff; open = logged in at once."""
    mode = accounts.signup_mode()
    if mode == "off":
        raise Http404("Sign-up is closed on this server.")
    if request.user.is_authenticated:
        return redirect("account-token")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.account_signup(username=form.cleaned_data["username"], email=form.cleaned_data["email"],
                                           password=form.cleaned_data["password1"])
        except accounts.SignupError as exc:
            field, _, message = str(exc).partition(": ")
            form.add_error(field if field in form.fields else None, message if field in form.fields else str(exc))
        else:
            if user is not None and user.is_active:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, "Welcome: your account is ready. Create an API token below.")
                return redirect("account-token")
            # The same page whether the name was free or taken (then nothing was created): it tells no one.
            return render(request, "frontend/researchers/signup_done.html", {"username": form.cleaned_data["username"]})
    return render(request, "frontend/researchers/signup.html", {"form": form, "mode": mode},
                  status=400 if request.method == "POST" else 200)


@never_cache  # the page shows a secret
@login_required
@require_http_methods(["GET", "POST"])
def token_page(request: HttpRequest) -> HttpResponse:
    """The logged-in user's own API token: shown, created, or rotated (the old key stops working)."""
    user = request.user
    assert isinstance(user, User)  # login_required lets only signed-in users through
    if request.method == "POST":
        accounts.token_rotate(user=user)
        messages.success(request, "A new token was created; any previous token no longer works.")
        return redirect("account-token")
    return render(request, "frontend/researchers/token.html", {
        "token": accounts.token_for_user(user=user),
        "site": request.build_absolute_uri("/").rstrip("/"),
    })


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def pending_accounts(request: HttpRequest) -> HttpResponse:
    """Staff: the accounts waiting for approval, with Approve (one, or every one listed)."""
    if not (request.user.is_active and request.user.is_staff):
        raise PermissionDenied("staff only")
    pending = account_selectors.accounts_pending()
    if request.method == "POST":
        chosen = pending if request.POST.get("all") else pending.filter(
            pk__in=[int(v) for v in request.POST.getlist("user")[:1000] if v.isdigit() and len(v) <= 18])
        count = accounts.accounts_approve(users=list(chosen))
        messages.success(request, f"{count} account{'s' if count != 1 else ''} approved: they can log in now.")
        return redirect("accounts-pending")
    return render(request, "frontend/researchers/pending.html", {"pending": list(pending[:500]),
                                                                 "total": pending.count()})


@login_required
def submission_log(request: HttpRequest, pk: int) -> HttpResponse:
    """A submission's jobs (status, timestamps, progress, error), files and log: its owner and staff only."""
    try:
        submission = selectors.submission_get_for_user(request.user, pk, write=True)
    except selectors.NotFound:
        raise Http404("No such submission.") from None
    submission = submission_refresh(submission=submission)
    staff = request.user.is_staff
    return render(request, "frontend/researchers/submission_log.html", {
        "submission": submission,
        "jobs": joblog.submission_jobs(submission=submission, for_staff=staff),
        "files": joblog.submission_files(submission=submission),
        "log": submission.log if staff else researcher_text(submission.log),
        "done": submission.status in ("finished", "failed", "cancelled"),
    })


urlpatterns = [
    path("submit/", submit_guide, name="submit-guide"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/pending/", pending_accounts, name="accounts-pending"),
    path("account/token/", token_page, name="account-token"),
    path("submissions/<int:pk>/log/", submission_log, name="submission-log"),
]
