from django import forms
from django.contrib import admin
from django.utils.html import format_html

from hpbench.catalog.models import BaseModel, Dataset, Image, ModelEntry, Query, RetrievalRun, TrainingJob


def _thumb(image_id: int | None, size: int = 64) -> str:
    if image_id is None:
        return "—"
    return format_html('<img src="/images/{}" alt="image {}" height="{}">', image_id, image_id, size)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "shareable", "image_root", "created_at"]
    list_filter = ["kind", "shareable"]
    search_fields = ["name"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "category", "split", "preview"]
    list_filter = ["dataset", "split", "category"]
    search_fields = ["name"]
    readonly_fields = ["preview_large", "attributes"]
    list_select_related = ["dataset"]

    @admin.display(description="image")
    def preview(self, obj: Image) -> str:
        return _thumb(obj.pk)

    @admin.display(description="image")
    def preview_large(self, obj: Image) -> str:
        return _thumb(obj.pk, 240)


@admin.register(Query)
class QueryAdmin(admin.ModelAdmin):
    list_display = ["key", "dataset", "split", "category", "captions", "reference_preview", "target_preview"]
    list_filter = ["dataset", "split", "category"]
    search_fields = ["key", "captions", "reference__name", "target__name"]
    raw_id_fields = ["reference", "target"]
    readonly_fields = ["reference_preview", "target_preview"]
    list_select_related = ["dataset"]

    @admin.display(description="reference")
    def reference_preview(self, obj: Query) -> str:
        return _thumb(obj.reference_id)

    @admin.display(description="target")
    def target_preview(self, obj: Query) -> str:
        return _thumb(obj.target_id)


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    list_display = ["name", "family", "variant", "owner", "is_baseline", "is_public", "is_hidden", "created_at"]
    list_filter = ["family", "is_baseline", "is_public", "is_hidden"]
    search_fields = ["name", "description"]
    list_editable = ["is_baseline", "is_hidden"]
    raw_id_fields = ["owner"]


@admin.register(RetrievalRun)
class RetrievalRunAdmin(admin.ModelAdmin):
    list_display = ["id", "model", "dataset", "split", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status", "dataset", "split"]
    search_fields = ["model__name"]
    readonly_fields = ["status", "progress", "log", "error", "timings", "metrics", "results_path",
                       "started_at", "finished_at"]
    list_select_related = ["model", "dataset"]
    actions = ["requeue"]

    @admin.action(description="Queue a fresh run with the same model, dataset and split")
    def requeue(self, request, queryset) -> None:
        from hpbench.catalog.services import retrieval_run_create

        for run in queryset:
            retrieval_run_create(model=run.model, dataset=run.dataset, split=run.split, topk=run.topk)
        self.message_user(request, f"Queued {queryset.count()} run(s).")


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    """Trainings queued with ``train_model --queue``: who runs them, their heartbeat and lost workers."""

    list_display = ["id", "family", "dataset", "objective", "epochs", "status", "progress", "claimed_by",
                    "heartbeat_at", "restarts", "created_at"]
    list_filter = ["status", "family"]
    readonly_fields = ["status", "progress", "error", "summary", "started_at", "finished_at", "claimed_by",
                       "heartbeat_at", "restarts"]


class BaseModelForm(forms.ModelForm):
    class Meta:
        model = BaseModel
        fields = ["name", "family", "paths", "description"]

    def clean(self) -> dict:
        from hpbench.catalog.family_config import ConfigError, base_model_paths_clean

        data = super().clean() or self.cleaned_data
        if "family" in data and "paths" in data:
            try:
                data["paths"] = base_model_paths_clean(family=data["family"], paths=data["paths"])
            except ConfigError as exc:
                self.add_error("paths", str(exc))
        return data


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    """Server-side files (CLIP folders, vocabularies) researchers choose by name as ``base_model``."""

    form = BaseModelForm
    list_display = ["name", "family", "paths", "updated_at"]
    list_filter = ["family"]
    search_fields = ["name", "description"]
