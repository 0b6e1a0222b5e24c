"""Admin: benchmarks (read-mostly), scores, submissions with re-run / baseline / hide actions."""

from __future__ import annotations

from django.contrib import admin, messages

from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import (
    BenchmarkPair,
    ModelScore,
    PreferenceBenchmark,
    PreferenceModel,
    ReportedScore,
    ScoreFile,
    Submission,
)
from hpbench.leaderboard.services.preference_models import preference_model_request
from hpbench.leaderboard.services.scores import model_scores_request
from hpbench.leaderboard.services.submissions import submission_rerun


@admin.register(PreferenceBenchmark)
class PreferenceBenchmarkAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "source", "dataset", "n_pairs", "tie_policy", "human_agreement",
                    "agreement_estimator", "is_active", "frozen_at"]
    list_filter = ["source", "is_active", "labels_public"]
    readonly_fields = ["name", "version", "source", "dataset", "campaign", "tie_policy", "fingerprint", "frozen_at",
                       "n_pairs", "votes_per_pair", "human_agreement", "human_alpha", "report", "hidden_split_of"]
    actions = ["score_all_models", "train_preference_model"]

    @admin.action(description="Train a preference model on the selected benchmarks (gpu queue)")
    def train_preference_model(self, request, queryset) -> None:
        rows = [preference_model_request(benchmark=b) for b in queryset]
        self.message_user(request, f"{len(rows)} preference model(s) queued or running.", messages.SUCCESS)

    @admin.action(description="Score every visible model on the selected benchmarks")
    def score_all_models(self, request, queryset) -> None:
        queued = 0
        for model in ModelEntry.objects.filter(is_hidden=False):
            queued += len(model_scores_request(model=model, benchmarks=list(queryset)))
        self.message_user(request, f"{queued} score(s) queued.", messages.SUCCESS)


@admin.register(PreferenceModel)
class PreferenceModelAdmin(admin.ModelAdmin):
    list_display = ["benchmark", "version", "method", "status", "progress", "folds", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in PreferenceModel._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(BenchmarkPair)
class BenchmarkPairAdmin(admin.ModelAdmin):
    list_display = ["benchmark", "position", "preference", "likert1", "likert2", "source_key"]
    list_filter = ["benchmark"]
    raw_id_fields = ["query", "reference", "set1_model", "set2_model"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # frozen


@admin.register(ModelScore)
class ModelScoreAdmin(admin.ModelAdmin):
    list_display = ["model", "benchmark", "status", "progress", "agreement", "preference_ratio", "computed_at"]
    list_filter = ["status", "benchmark"]
    actions = ["rescore"]

    @admin.action(description="Re-run the selected scores")
    def rescore(self, request, queryset) -> None:
        n = 0
        for score in queryset.select_related("model", "benchmark"):
            n += len(model_scores_request(model=score.model, benchmarks=[score.benchmark], force=True))
        self.message_user(request, f"{n} score(s) queued.", messages.SUCCESS)


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "model", "family", "status", "progress", "is_public", "created_at"]
    list_filter = ["status", "is_public", "family"]
    raw_id_fields = ["owner", "model"]
    actions = ["rerun", "mark_baseline", "hide", "unhide"]

    @admin.action(description="Re-run the selected submissions")
    def rerun(self, request, queryset) -> None:
        for submission in queryset:
            submission_rerun(submission=submission)
        self.message_user(request, f"{queryset.count()} submission(s) re-queued.", messages.SUCCESS)

    @admin.action(description="Mark their models as baselines")
    def mark_baseline(self, request, queryset) -> None:
        n = ModelEntry.objects.filter(submission__in=queryset).update(is_baseline=True)
        self.message_user(request, f"{n} model(s) marked as baseline.", messages.SUCCESS)

    @admin.action(description="Hide their models from the leaderboard")
    def hide(self, request, queryset) -> None:
        n = ModelEntry.objects.filter(submission__in=queryset).update(is_hidden=True)
        self.message_user(request, f"{n} model(s) hidden.", messages.SUCCESS)

    @admin.action(description="Show their models again")
    def unhide(self, request, queryset) -> None:
        n = ModelEntry.objects.filter(submission__in=queryset).update(is_hidden=False)
        self.message_user(request, f"{n} model(s) shown.", messages.SUCCESS)


@admin.register(ScoreFile)
class ScoreFileAdmin(admin.ModelAdmin):
    list_display = ["model", "kind", "benchmark", "dataset", "split", "metric", "rows", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["model", "benchmark", "dataset"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # validated on upload; replace it by uploading again


@admin.register(ReportedScore)
class ReportedScoreAdmin(admin.ModelAdmin):
    """Papers' figures; link a row to a model to show the paper's figure beside the platform's."""

    list_display = ["benchmark_name", "source", "label", "preference_ratio", "model"]
    list_filter = ["benchmark_name", "source"]
    raw_id_fields = ["model"]
