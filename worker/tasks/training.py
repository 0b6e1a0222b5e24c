"""Training on the ``gpu`` queue (thin: the work is :func:`worker.training.model_train`)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="gpu.training.train_model", acks_late=True, reject_on_worker_lost=True)
def train_model(
    family: str,
    dataset: str,
    objective: str,
    epochs: int,
    out_dir: str,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Train on a registered dataset on ``HPBENCH_DEVICE``; a redelivered task resumes from the last finished
    epoch in ``out_dir`` (a folder of the worker). The finished folder is also stored in the media storage under
    ``training/<folder name>/`` (``stored``: its names). Returns :func:`model_train`'s summary."""
    from pathlib import Path

    from django.conf import settings

    from worker.training import model_train, training_outputs_store

    summary = model_train(
        family=family,
        dataset_name=dataset,
        objective=objective,
        epochs=epochs,
        out_dir=out_dir,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        resume=None,
        device=settings.HPBENCH_DEVICE or "auto",
    )
    summary["stored"] = training_outputs_store(out_dir=out_dir, prefix=f"training/{Path(out_dir).name}")
    return summary
