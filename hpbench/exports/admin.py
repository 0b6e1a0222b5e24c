from django.contrib import admin

from hpbench.exports.models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "format", "status", "progress", "rows", "requested_by", "created_at", "finished_at")
    list_filter = ("status", "format")
    readonly_fields = (
        "token",
        "file_path",
        "rows",
        "progress",
        "summary",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "claimed_by",
        "heartbeat_at",
        "restarts",
    )
