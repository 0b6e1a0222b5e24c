"""The Celery application shared by the web process (to enqueue) and the workers (to run)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")

app = Celery("hpbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks(["worker"], related_name="tasks")


def ensure_broker_folders() -> None:
    """Create the filesystem broker's and result backend's folders (embedded mode); a no-op otherwise."""
    from pathlib import Path

    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    folders = [options[key] for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
               if key in options]
    backend = getattr(settings, "CELERY_RESULT_BACKEND", "") or ""
    if backend.startswith("file://"):
        folders.append(backend.removeprefix("file://"))
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _embedded_folders(sender: Celery, **kwargs) -> None:
    # The web process and every worker need the filesystem broker's folders before the first message.
    ensure_broker_folders()
