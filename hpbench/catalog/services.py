"""Writes to the catalogue: registering models, queueing retrieval runs and trainings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from hpbench import dispatch
from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun, TrainingJob

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


class RegistrationError(ValueError):
    """A model cannot be registered; the message says why."""


def _check_checkpoint_location(path: str) -> None:
    location = Path(path)
    if not location.exists():
        raise RegistrationError(f"checkpoint {path}: no such file or folder")
    if location.is_file():
        if location.suffix not in CHECKPOINT_SUFFIXES:
            raise RegistrationError(
                f"checkpoint {path}: expected a folder or a {', '.join(CHECKPOINT_SUFFIXES)} file"
            )
        if location.stat().st_size > settings.HPBENCH_MAX_CHECKPOINT_BYTES:
            raise RegistrationError(
                f"checkpoint {path}: {location.stat().st_size} bytes is over the limit of "
                f"{settings.HPBENCH_MAX_CHECKPOINT_BYTES} (HPBENCH_MAX_CHECKPOINT_BYTES)"
            )


def model_entry_register(
    *,
    name: str,
    family: str,
    checkpoint_path: str = "",
    variant: str = "",
    config: dict[str, Any] | None = None,
    owner=None,
    is_baseline: bool = False,
    is_public: bool = True,
    description: str = "",
    link: str = "",
) -> ModelEntry:
    """Register (or update, by name) a model whose checkpoint lies on the server.

    Checks the family and variant names and that the checkpoint exists; the weights themselves are
    only read by a worker. Raises :class:`RegistrationError`.
    """
    from models_zoo import FAMILIES, VARIANTS  # cheap: no torch at import

    if family not in FAMILIES:
        raise RegistrationError(f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    if variant and variant not in VARIANTS[family]:
        raise RegistrationError(
            f"unknown variant {variant!r} for {family}; known: {', '.join(VARIANTS[family])}"
        )
    from hpbench.catalog.family_config import BASE_MODEL_KEY, ConfigError, researcher_config_clean
    from hpbench.catalog.links import link_problem

    if link_problem(link):
        raise RegistrationError(f"link {link!r}: {link_problem(link)}")
    if config and BASE_MODEL_KEY in config:  # staff may give paths directly, or name a registered base model
        try:
            researcher_config_clean(family=family, config={BASE_MODEL_KEY: config[BASE_MODEL_KEY]})
        except ConfigError as exc:
            raise RegistrationError(str(exc)) from None
    if checkpoint_path:
        checkpoint_path = str(Path(checkpoint_path).expanduser().resolve())
        _check_checkpoint_location(checkpoint_path)
    entry, _ = ModelEntry.objects.update_or_create(
        name=name,
        defaults={
            "family": family, "variant": variant, "checkpoint_path": checkpoint_path,
            "config": config or {}, "owner": owner, "is_baseline": is_baseline, "is_public": is_public,
            "description": description, "link": link,
        },
    )
    return entry


def retrieval_run_create(
    *, model: ModelEntry, dataset: Dataset, split: str = "val", topk: int | None = None
) -> RetrievalRun:
    """Create a queued run and dispatch it to the ``gpu`` queue once the transaction commits."""
    if not dataset.queries.filter(split=split).exists():
        raise ValueError(f"dataset {dataset.name} has no queries in split {split!r}")
    run = RetrievalRun.objects.create(
        model=model, dataset=dataset, split=split, topk=topk or settings.HPBENCH_TOPK
    )
    dispatch.task_send_on_commit(dispatch.RETRIEVAL_RUN, run.pk)
    return run


def retrieval_run_cancel(*, run: RetrievalRun) -> bool:
    """Cancel a queued or running run; a worker checks the status between batches. Returns whether it changed."""
    changed = RetrievalRun.objects.filter(
        pk=run.pk, status__in=[RetrievalRun.Status.QUEUED, RetrievalRun.Status.RUNNING]
    ).update(status=RetrievalRun.Status.CANCELLED, finished_at=timezone.now())
    return changed == 1


def training_job_create(
    *, family: str, dataset: str, objective: str, epochs: int, out_dir: str, lr: float = 1e-4,
    batch_size: int = 32, seed: int = 0,
) -> TrainingJob:
    """Queue a training (task ``gpu.training.train_model``, sent once the transaction commits) writing ``out_dir``
    on the worker. Raises ``ValueError`` for an unknown objective or dataset, or fewer than one epoch."""
    if objective not in ("qure", "contrastive"):
        raise ValueError(f"objective {objective!r}: expected qure or contrastive")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if not Dataset.objects.filter(name=dataset).exists():
        raise ValueError(f"no dataset named {dataset!r}")
    job = TrainingJob.objects.create(family=family, dataset=dataset, objective=objective, epochs=epochs,
                                     out_dir=out_dir, lr=lr, batch_size=batch_size, seed=seed)
    dispatch.task_send_on_commit(dispatch.TRAIN_MODEL, job.pk)
    return job
