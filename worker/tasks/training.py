"""Training on the ``gpu`` queue (thin: the work is :func:`worker.training.training_job_execute`)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="gpu.training.train_model", acks_late=True, reject_on_worker_lost=True)
def train_model(job_id: int) -> dict[str, Any]:
    """Claim the :class:`~hpbench.catalog.models.TrainingJob` and train on ``HPBENCH_DEVICE``; a redelivered or
    requeued task resumes from the last finished epoch in the job's folder (a folder of the worker). The finished
    folder is also stored in the media storage under ``training/<folder name>/`` (``stored``: its names). Returns
    :func:`~worker.training.model_train`'s summary, or ``{"status": ...}`` when there was nothing to do."""
    from worker.training import training_job_execute

    return training_job_execute(job_id=job_id)
