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
    """Create the filesystem broker's folders (embedded mode); a no-op for other brokers."""
    from pathlib import Path

    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)
