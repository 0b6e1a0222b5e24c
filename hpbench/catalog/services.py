"""Writes to the catalogue: registering models, queueing retrieval runs and trainings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from hpbench import dispatch
from hpbench.catalog.models import Dataset, ModelEntry, Query, RetrievalRun, TrainingJob

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


def query_results_shown_to(*, user, query: Query) -> bool:
    """Whether ``query``'s model results and target may be shown to this caller, stamping the query's
    ``results_public_at`` the first time someone other than staff is shown them (campaign builds never draw a
    stamped query: its sets could be matched to the models that made them).

    Hidden (False) as :func:`hpbench.catalog.selectors.query_results_hidden_from` says; the stamp is a
    conditional UPDATE on the query's row that skips reserved queries, so a build reserving the query at the
    same moment either sees the stamp or makes this answer False, never both miss.
    """
    from hpbench.catalog.selectors import query_results_hidden_from

    if query_results_hidden_from(user=user, query=query):
        return False
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    if query.results_public_at is not None:
        return True
    stamped = Query.objects.filter(pk=query.pk, reserved=False).update(
        results_public_at=Coalesce(F("results_public_at"), Value(timezone.now()))
    )
    return stamped == 1


def query_pool_reserve(*, dataset: Dataset, split: str, count: int, seed: int = 0) -> list[int]:
    """Put ``count`` more queries of ``dataset``/``split`` into the private pool (``Query.reserved``): drawn at
    random (``seed``) among those whose results were never public and that are not reserved yet. Their results
    are never shown publicly; campaigns built later draw from them. Returns the ids reserved (fewer when fewer
    are left). Raises ``ValueError`` for ``count < 0``."""
    import random

    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a whole number >= 0, got {count!r}")
    free = list(
        Query.objects.filter(dataset=dataset, split=split, reserved=False, results_public_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    picked = sorted(random.Random(seed).sample(free, min(count, len(free))))
    Query.objects.filter(pk__in=picked, results_public_at__isnull=True).update(reserved=True)
    return list(Query.objects.filter(pk__in=picked, reserved=True).values_list("pk", flat=True))


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
