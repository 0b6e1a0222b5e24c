"""Export jobs: a staff member's request to write the preference dataset to a file, run by a worker."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_token() -> str:
    """An unguessable download token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    class Format(models.TextChoices):
        PARQUET = "parquet", "Parquet"
        JSONL = "jsonl", "JSON Lines"
        CSV = "csv", "CSV"
        HF = "hf", "Hugging Face dataset folder (zip)"
        HPFIQ = "hpfiq", "HP-FashionIQ layout (JSON)"
        PPI = "ppi", "Prediction-powered agreement inputs of a benchmark (JSON)"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=8, choices=Format.choices)
    params = models.JSONField(default=dict, blank=True, help_text="Filters and level, as given (validated).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    rows = models.PositiveBigIntegerField(default=0)
    file_path = models.CharField(max_length=1000, blank=True, default="")
    token = models.CharField(max_length=64, unique=True, default=new_token)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The job's claim (worker/claims.py): its worker, that worker's last sign of life, takeovers from lost ones.
    claimed_by = models.CharField(max_length=255, blank=True, default="", help_text="host:pid:task of the worker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0, help_text="Times it was taken over from a lost worker.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"
