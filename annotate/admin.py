"""Admin pages: create campaigns, build/open/close them and watch progress; read comparisons and votes."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from annotate import crowd, quality
from annotate.errors import BuildError
from annotate.models import Annotator, Campaign, Comparison, Vote
from annotate.services.campaign_build import campaign_refresh
from annotate.services.campaigns import campaign_build_enqueue, campaign_set_status


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name",
        "dataset",
        "split",
        "status",
        "build_status",
        "build_percent",
        "votes",
        "created_at",
        "monitor",
    )
    list_filter = ("status", "build_status", "dataset")
    search_fields = ("slug", "name")
    filter_horizontal = ("models", "pool_models")
    readonly_fields = ("build_status", "build_progress", "build_error", "build_started_at", "claimed_by",
                       "heartbeat_at", "restarts", "created_by", "created_at", "figures")
    prepopulated_fields = {"slug": ("name",)}
    actions = ("action_build", "action_open", "action_close", "action_refresh_quality", "action_refresh_pairs")

    @admin.display(description="built")
    def build_percent(self, obj: Campaign) -> str:
        return f"{obj.build_progress:.0%}"

    @admin.display(description="votes")
    def votes(self, obj: Campaign) -> int:
        return sum(Comparison.objects.filter(campaign=obj).values_list("votes_count", flat=True))

    @admin.display(description="monitor")
    def monitor(self, obj: Campaign) -> str:
        return format_html('<a href="/campaigns/{}/monitor/">Monitor</a>', obj.slug)

    @admin.display(description="progress and quality")
    def figures(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        f = quality.campaign_figures(campaign=obj)
        agreement = "n/a" if f["pairwise_agreement"] is None else f"{f['pairwise_agreement']:.3f}"
        alpha = "n/a" if f["krippendorff_alpha"] is None else f"{f['krippendorff_alpha']:.3f}"
        return format_html(
            '{} of {} votes ({}), {} annotators ({} flagged), agreement {}, α {}. '
            '<a href="/campaigns/{}/monitor/">Open the monitoring page</a> for progress over time, intervals '
            "and the annotators.",
            f["votes"], f["votes_wanted"], f"{f['progress']:.0%}", f["annotators"], f["flagged_annotators"],
            agreement, alpha, obj.slug,
        )

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Build comparisons (in the background)")
    def action_build(self, request, queryset) -> None:
        with transaction.atomic():
            queued = sum(campaign_build_enqueue(campaign=c) for c in queryset)
        self.message_user(request, f"{queued} campaign(s) queued for building.")

    def _set_status(self, request, queryset, status: str) -> None:
        for campaign in queryset:
            try:
                campaign_set_status(campaign=campaign, status=status)
            except ValueError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
            else:
                self.message_user(request, f"{campaign.slug}: {status}.")

    @admin.action(description="Open for annotation")
    def action_open(self, request, queryset) -> None:
        self._set_status(request, queryset, Campaign.Status.OPEN)

    @admin.action(description="Close")
    def action_close(self, request, queryset) -> None:
        self._set_status(request, queryset, Campaign.Status.CLOSED)

    @admin.action(description="Add informative comparisons (a quarter of num_queries, current ratings)")
    def action_refresh_pairs(self, request, queryset) -> None:
        for campaign in queryset:
            try:
                added = campaign_refresh(campaign=campaign, count=max(1, campaign.num_queries // 4))
            except (ValueError, BuildError) as exc:
                self.message_user(request, f"{campaign.slug}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{campaign.slug}: {added} comparison(s) added.")

    @admin.action(description="Refresh quality flags (gold accuracy)")
    def action_refresh_quality(self, request, queryset) -> None:
        for campaign in queryset:
            flagged = quality.quality_refresh(campaign=campaign)
            self.message_user(request, f"{campaign.slug}: {len(flagged)} annotator(s) flagged.")


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Comparison)
class ComparisonAdmin(_ReadOnly):
    list_display = (
        "id", "campaign", "query", "set_a_model", "set_b_model", "is_gold", "votes_count", "target_votes", "open_slots",
        "stop_reason", "selection_round", "selection_pi", "selection_weight",
    )
    list_filter = ("campaign", "is_gold", "shows_reference", "stop_reason")
    list_select_related = ("campaign", "query", "set_a_model", "set_b_model")
    raw_id_fields = ("query", "reference_image")


@admin.register(Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ("pseudonym", "campaign", "source", "votes_count", "flagged", "completion_code", "created_at")
    list_filter = ("campaign", "source", "flagged")
    search_fields = ("pseudonym",)
    list_select_related = ("campaign",)
    readonly_fields = (
        "pseudonym",
        "campaign",
        "user",
        "source",
        "external_id_hash",
        "study_id",
        "session_id",
        "assignment_id",
        "hit_id",
        "submit_to",
        "votes_count",
        "created_at",
        "completion_code",
        "figures",
    )
    exclude = ()

    @admin.display(description="own completion code")
    def completion_code(self, obj: Annotator) -> str:
        """The code this annotator was shown, where the campaign gives each their own (to verify hand-ins)."""
        if not obj.campaign.completion_code_per_annotator:
            return "-"
        return crowd.completion_code_for(
            base=obj.campaign.completion_code, campaign_id=obj.campaign_id, annotator_id=obj.pk
        )

    @admin.display(description="quality figures")
    def figures(self, obj: Annotator) -> str:
        for row in quality.annotator_figures(campaign=obj.campaign):
            if row.annotator_id == obj.pk:
                return "; ".join(f"{k}: {v}" for k, v in row.as_dict().items())
        return "-"


@admin.register(Vote)
class VoteAdmin(_ReadOnly):
    list_display = (
        "id",
        "comparison",
        "annotator",
        "choice",
        "rating_a",
        "rating_b",
        "irrelevant",
        "time_ms",
        "too_fast",
        "excluded",
        "created_at",
    )
    list_filter = ("comparison__campaign", "choice", "irrelevant", "too_fast", "excluded")
    list_select_related = ("comparison", "annotator")
    raw_id_fields = ("assignment", "comparison", "annotator")
