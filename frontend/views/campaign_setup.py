"""Staff pages that set up a study without the raw admin: import a dataset folder, create a campaign in two steps
(dataset and split, then models and options with the defaults filled), then build, preview and open it.

``/campaigns/new/``                  step 1: dataset and split; step 2 (``?dataset=&split=``): the campaign form
``/campaigns/<slug>/setup/``         the campaign's state, with Build / Open / Close and the build's progress
``/campaigns/<slug>/setup/status``   that state as JSON (the page polls it while a build runs)
``/datasets/import/``                a dataset folder imported by the same importer as ``manage.py import_dataset``

Anonymous visitors are sent to the login page; logged-in non-staff users get 403 (as the monitoring page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate import selectors
from annotate.errors import CampaignNotFound
from annotate.models import Campaign
from annotate.services.campaigns import campaign_build_enqueue, campaign_create, campaign_set_status
from hpbench.catalog.importers import (
    CIRR_SPLITS,
    FASHIONIQ_CATEGORIES,
    FASHIONIQ_SPLITS,
    DatasetImportError,
    import_cirr,
    import_fashioniq,
)
from hpbench.catalog.models import Dataset
from hpbench.catalog.selectors import dataset_splits, models_with_finished_runs

#: The campaign options the set-up form asks for, in the order shown, grouped under a heading each. Every other
#: field keeps its model default (editable later in the admin).
OPTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("How many votes", ("num_queries", "votes_per_pair", "adaptive_overlap", "min_votes_per_pair", "pair_selection")),
    ("What annotators answer", ("ask_ratings", "ask_irrelevant", "allow_tie", "set_size")),
    ("Quality", ("gold_share", "gold_feedback", "min_vote_ms", "per_person_quota")),
    ("Crowd", ("require_crowd_session", "crowd_study_ids", "completion_url", "completion_code",
               "completion_code_per_annotator")),
    ("First screen", ("instructions", "consent_text")),
)


def _staff(request: HttpRequest) -> HttpResponse | None:
    """A redirect to the login page for anonymous visitors; 403 for anyone but active staff; ``None`` for staff."""
    if not request.user.is_authenticated:
        return redirect(f"{settings.LOGIN_URL}?next={quote(request.get_full_path())}")
    if not (request.user.is_active and request.user.is_staff):
        raise PermissionDenied("staff only")
    return None


def _campaign(slug: str) -> Campaign:
    try:
        return selectors.campaign_get(slug=slug)
    except CampaignNotFound:
        raise Http404("No such campaign.") from None


class CampaignForm(forms.ModelForm):
    """Name, models and the options of :data:`OPTION_GROUPS`; the model's validators and defaults apply."""

    class Meta:
        model = Campaign
        fields = ("name", "slug", *(name for _, names in OPTION_GROUPS for name in names))
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 5}),
            "consent_text": forms.Textarea(attrs={"rows": 3}),
        }

    models = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="Models whose result sets are compared: those with a finished retrieval run on this split.",
    )

    completion_url = forms.URLField(
        required=False, assume_scheme="https", max_length=200,
        help_text=Campaign._meta.get_field("completion_url").help_text or "Where annotators are sent when done.",
    )

    def __init__(self, *args: Any, model_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models_field = self.fields["models"]
        assert isinstance(models_field, forms.MultipleChoiceField)
        models_field.choices = model_choices
        self.fields["slug"].required = False
        self.fields["slug"].help_text = "In the annotators' URL (/annotate/<slug>/); left empty: made from the name."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("slug") and data.get("name"):
            data["slug"] = slugify(data["name"])[:100]
            if Campaign.objects.filter(slug=data["slug"]).exists():
                self.add_error("name", f"a campaign with the address {data['slug']!r} exists: give another slug")
        if len(data.get("models") or ()) < 2:
            self.add_error("models", "choose at least two models")
        if data.get("adaptive_overlap") and (data.get("min_votes_per_pair") or 0) > (data.get("votes_per_pair") or 0):
            self.add_error("min_votes_per_pair", "with adaptive overlap this must be at most the votes per pair")
        return data

    def option_groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in OPTION_GROUPS]


@never_cache
@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    """Step 1 (no ``dataset``): choose a dataset and split. Step 2: the campaign form; POST creates a draft."""
    refused = _staff(request)
    if refused is not None:
        return refused
    datasets = list(Dataset.objects.order_by("name"))
    dataset_id, split = request.GET.get("dataset", ""), request.GET.get("split", "")
    dataset = next((d for d in datasets if str(d.pk) == dataset_id), None)
    splits = dataset_splits(dataset=dataset) if dataset is not None else {}
    if dataset is None or split not in splits:
        choices = [
            {"dataset": d, "splits": [(name, count) for name, count in dataset_splits(dataset=d).items()]}
            for d in datasets
        ]
        return render(request, "frontend/campaigns/new_step1.html", {"choices": choices})

    runs = models_with_finished_runs(dataset=dataset, split=split)
    model_choices = [(str(m.pk), f"{m.name} ({m.get_family_display()})") for m in runs]
    initial = {"name": f"{dataset.name} {split} study", "num_queries": min(100, splits[split]),
               "models": [value for value, _ in model_choices]}
    form = CampaignForm(request.POST or None, model_choices=model_choices, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        wanted = set(data.pop("models"))
        chosen = [m for m in runs if str(m.pk) in wanted]
        try:
            campaign = campaign_create(
                dataset=dataset, split=split, models=chosen, created_by=request.user,
                slug=data.pop("slug"), name=data.pop("name"), **data,
            )
        except (ValueError, IntegrityError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Campaign {campaign.slug} created as a draft: build it next.")
            return redirect(f"/campaigns/{campaign.slug}/setup/")
    context = {"dataset": dataset, "split": split, "n_queries": splits[split], "form": form,
               "no_models": len(model_choices) < 2}
    return render(request, "frontend/campaigns/new_step2.html", context)


def _state(campaign: Campaign) -> dict[str, Any]:
    """What the set-up page shows and polls: status, build status and progress, the comparisons built."""
    return {
        "status": campaign.status,
        "build_status": campaign.build_status,
        "build_progress": round(campaign.build_progress, 3),
        "build_error": campaign.build_error,
        "comparisons": campaign.comparisons.count(),
    }


@never_cache
@require_GET
def campaign_setup(request: HttpRequest, slug: str) -> HttpResponse:
    """The campaign's steps: build (with progress), preview a real task, open; then the links to share."""
    refused = _staff(request)
    if refused is not None:
        return refused
    campaign = _campaign(slug)
    page_url = request.build_absolute_uri(f"/annotate/{campaign.slug}/")
    context = {
        "campaign": campaign,
        "state": _state(campaign),
        "models": list(campaign.models.order_by("name")),
        "annotate_url": page_url,
        "building": campaign.build_status in (Campaign.BuildStatus.QUEUED, Campaign.BuildStatus.RUNNING),
    }
    return render(request, "frontend/campaigns/setup.html", context)


@never_cache
@require_GET
def campaign_setup_status(request: HttpRequest, slug: str) -> HttpResponse:
    refused = _staff(request)
    if refused is not None:
        return refused
    return JsonResponse(_state(_campaign(slug)))


@require_POST
def campaign_setup_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """``build`` queues the build (again after a failure); ``open`` / ``close`` change the status."""
    refused = _staff(request)
    if refused is not None:
        return refused
    campaign = _campaign(slug)
    if action == "build":
        if campaign.comparisons.exists():
            messages.error(request, "This campaign is built already; use the admin's refresh to draw more pairs.")
        elif campaign_build_enqueue(campaign=campaign):
            messages.success(request, "Build queued: the page follows its progress.")
        else:
            messages.error(request, "A build is already queued or running.")
    elif action in (Campaign.Status.OPEN, Campaign.Status.CLOSED):
        try:
            campaign_set_status(campaign=campaign, status=action)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Campaign {campaign.slug} is {action}.")
    else:
        raise Http404("No such action.")
    return redirect(f"/campaigns/{campaign.slug}/setup/")


class DatasetImportForm(forms.Form):
    format = forms.ChoiceField(choices=[("fashioniq", "FashionIQ layout"), ("cirr", "CIRR layout")])
    root = forms.CharField(
        label="Folder on the server", max_length=1000,
        help_text="FashionIQ: captions/, image_splits/, images/ or image_data/<category>/. "
                  "CIRR: cirr/captions/, cirr/image_splits/ and the image folders they name.",
    )
    name = forms.SlugField(max_length=100, help_text="The dataset's name (re-importing a name updates it in place).")
    splits = forms.CharField(
        required=False, max_length=200,
        help_text=f"Space-separated; empty: all (FashionIQ {' '.join(FASHIONIQ_SPLITS)}; "
                  f"CIRR {' '.join(CIRR_SPLITS)}).",
    )


@never_cache
@require_http_methods(["GET", "POST"])
def dataset_import(request: HttpRequest) -> HttpResponse:
    """Import a dataset folder with the importer ``manage.py import_dataset`` uses: one transaction, and a
    malformed file stops it with the file and entry named and nothing written."""
    refused = _staff(request)
    if refused is not None:
        return refused
    form = DatasetImportForm(request.POST or None)
    report: dict[str, Any] | None = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        known = FASHIONIQ_SPLITS if data["format"] == "fashioniq" else CIRR_SPLITS
        splits = data["splits"].split() or list(known)
        unknown = [s for s in splits if s not in known]
        if unknown:
            form.add_error("splits", f"unknown split(s) {', '.join(unknown)}: expected some of {', '.join(known)}")
        else:
            try:
                if data["format"] == "fashioniq":
                    result = import_fashioniq(data["root"], name=data["name"], splits=splits,
                                              categories=FASHIONIQ_CATEGORIES)
                else:
                    result = import_cirr(data["root"], name=data["name"], splits=splits)
            except DatasetImportError as exc:
                form.add_error(None, f"Import failed, nothing was written: {exc}")
            else:
                report = result.as_dict()
                dataset = Dataset.objects.get(name=data["name"])
                first = next(iter(dataset_splits(dataset=dataset)), "")
                report["next"] = "/campaigns/new/?" + urlencode({"dataset": dataset.pk, "split": first})
    return render(request, "frontend/campaigns/import.html", {"form": form, "report": report})


urlpatterns = [
    path("campaigns/new/", campaign_new, name="campaign-new"),
    path("campaigns/<slug:slug>/setup/", campaign_setup, name="campaign-setup"),
    path("campaigns/<slug:slug>/setup/status", campaign_setup_status, name="campaign-setup-status"),
    path("campaigns/<slug:slug>/setup/<slug:action>", campaign_setup_action, name="campaign-setup-action"),
    path("datasets/import/", dataset_import, name="dataset-import"),
]
