"""The embedded demo: the generated dataset, the shipped demo models, and everything computed from them.

``demo_prepare`` runs in the foreground of ``manage.py up`` (files and rows only); ``demo_fill``
runs beside the servers and goes through the same paths a person would: Celery tasks, and the HTTP
API for the simulated annotators. Both are idempotent: they only add what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun

DEMO_DATASET = "demo"
DEMO_SPLIT = "val"
CHECKPOINTS = Path(__file__).resolve().parents[2] / "models_zoo" / "demo" / "checkpoints"

#: name -> (family, variant, checkpoint folder name under models_zoo/demo/checkpoints, baseline?, description)
DEMO_MODELS: dict[str, tuple[str, str, str, bool, str]] = {
    "demo-qure": ("demo", "", "demo-qure", False, "Demo family trained with the QuRe objective."),
    "demo-contrastive": ("demo", "", "demo-contrastive", True, "Demo family trained with in-batch InfoNCE."),
}

Log = Callable[[str], object]


def demo_folder() -> Path:
    return Path(settings.HPBENCH_DATA_ROOT) / "demo"


def demo_prepare(*, per_category: int = 400, log: Log = print) -> Dataset:
    """Generate (once) and import the demo dataset, and register the demo models whose checkpoints ship."""
    from hpbench.catalog.demo import make_demo_dataset
    from hpbench.catalog.importers import import_fashioniq
    from hpbench.catalog.services import model_entry_register

    folder = demo_folder()
    if not (folder / "demo_manifest.json").exists():
        log(f"Generating the demo dataset in {folder} …")
        make_demo_dataset(folder, seed=0, per_category=per_category)
    dataset = Dataset.objects.filter(name=DEMO_DATASET).first()
    if dataset is None:
        log("Importing the demo dataset …")
        import_fashioniq(folder, name=DEMO_DATASET)
        dataset = Dataset.objects.get(name=DEMO_DATASET)
    for name, (family, variant, checkpoint, baseline, description) in DEMO_MODELS.items():
        path = CHECKPOINTS / checkpoint
        if not path.exists():
            log(f"skipping {name}: no checkpoint at {path}")
            continue
        if not ModelEntry.objects.filter(name=name).exists():
            model_entry_register(name=name, family=family, variant=variant, checkpoint_path=str(path),
                                 is_baseline=baseline, description=description)
    return dataset


def demo_models() -> list[ModelEntry]:
    return list(ModelEntry.objects.filter(name__in=DEMO_MODELS).order_by("name"))


def _ensure_runs(dataset: Dataset, log: Log) -> list[RetrievalRun]:
    from hpbench.catalog.services import retrieval_run_create

    runs = []
    for model in demo_models():
        run = (RetrievalRun.objects.filter(model=model, dataset=dataset, split=DEMO_SPLIT)
               .exclude(status__in=[RetrievalRun.Status.FAILED, RetrievalRun.Status.CANCELLED])
               .order_by("-id").first())
        if run is None:
            with transaction.atomic():
                run = retrieval_run_create(model=model, dataset=dataset, split=DEMO_SPLIT)
            log(f"queued retrieval run {run.pk} for {model.name}")
        runs.append(run)
    return runs


def wait_for_runs(runs: list[RetrievalRun], *, timeout: float = 3600) -> list[RetrievalRun]:
    deadline = time.monotonic() + timeout
    pending = {run.pk for run in runs}
    while pending and time.monotonic() < deadline:
        done = RetrievalRun.objects.filter(pk__in=pending).exclude(
            status__in=[RetrievalRun.Status.QUEUED, RetrievalRun.Status.RUNNING]
        ).values_list("pk", flat=True)
        pending -= set(done)
        if pending:
            time.sleep(2)
    return list(RetrievalRun.objects.filter(pk__in=[run.pk for run in runs]))


def demo_fill(*, base_url: str, log: Log = print) -> None:
    """Queue and wait for what the demo lacks; log a line per step. Never raises (it runs in a thread)."""
    try:
        dataset = Dataset.objects.get(name=DEMO_DATASET)
        runs = wait_for_runs(_ensure_runs(dataset, log))
        for run in runs:
            log(f"retrieval run {run.pk} ({run.model.name}): {run.status} {run.metrics.get('avg', '')}")
        for step in DEMO_STEPS:
            step(dataset=dataset, base_url=base_url, log=log)
        log(f"demo ready: {base_url}/leaderboard/")
    except Exception as exc:  # the servers keep running; the log says what failed
        log(f"demo setup stopped: {type(exc).__name__}: {exc}")


#: Further steps (campaign, simulated annotators, benchmark, scores), each ``step(dataset=, base_url=, log=)``.
DEMO_STEPS: list[Callable[..., None]] = []
