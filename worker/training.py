"""Training a model family on a registered dataset (QuRe's objective or the contrastive baseline).

:func:`dataset_query_sets` reads a dataset's train and val queries from the database; :func:`model_train`
is the service the ``train_model`` command and the ``gpu.training.train_model`` task
(worker/tasks/training.py) both call. torch and the
model zoo are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOCK_NAME = ".training.lock"


def dataset_query_sets(*, dataset_name: str, preprocess: Callable[[Any], Any]) -> tuple[Any, Any | None]:
    """``(train, val)`` :class:`models_zoo.qure.data.QuerySet` of a registered dataset.

    Query text: :func:`hpbench.catalog.query_text.query_text` (FashionIQ's two captions joined as the official
    code does, for FashionIQ and the demo; CIRR's caption as is). ``val`` (for the per-epoch Recall@K) is None
    for CIRR or when the dataset has no val queries with targets; its galleries are each category's val
    gallery (:func:`hpbench.catalog.selectors.gallery_images`).
    Raises ValueError for an unknown dataset or one without train queries.
    """
    from hpbench.catalog.models import Dataset, Query
    from hpbench.catalog.query_text import query_text
    from hpbench.catalog.selectors import gallery_images
    from models_zoo.qure.data import FilePixels, QuerySet

    try:
        dataset = Dataset.objects.get(name=dataset_name)
    except Dataset.DoesNotExist:
        raise ValueError(f"no dataset named {dataset_name!r}") from None
    root = Path(dataset.image_root)
    paths: list[Path] = []
    ids: dict[int, int] = {}

    def image_id(pk: int, file_path: str) -> int:
        if pk not in ids:
            ids[pk] = len(paths)
            paths.append(root / file_path)
        return ids[pk]

    def text_of(query: Query) -> str:
        return query_text(protocol=dataset.protocol, captions=query.captions)

    def query_rows(split: str) -> tuple | None:
        rows = (
            Query.objects.filter(dataset=dataset, split=split, target__isnull=False)
            .select_related("reference", "target")
            .order_by("id")
        )
        reference, target, texts, categories = [], [], [], []
        for query in rows:
            try:
                texts.append(text_of(query))
            except (ValueError, IndexError) as exc:
                raise ValueError(f"dataset {dataset_name}, query {query.key}: {exc}") from None
            assert query.target is not None  # the rows are the queries with a target
            reference.append(image_id(query.reference_id, query.reference.file_path))
            target.append(image_id(query.target.pk, query.target.file_path))
            categories.append(query.category)
        if not reference:
            return None
        galleries: dict[str, list[int]] = {}
        if split != "train":  # each category's gallery as the protocol has it (an image may be in two)
            for category in sorted(set(categories)):
                for pk, file_path in gallery_images(dataset=dataset, split=split, category=category).values_list(
                    "pk", "file_path"
                ):
                    galleries.setdefault(category, []).append(image_id(pk, file_path))
        return reference, target, texts, categories, galleries

    train_rows = query_rows("train")
    if train_rows is None:
        raise ValueError(f"dataset {dataset_name!r} has no train queries with targets")
    val_rows = None if dataset.protocol == "cirr" else query_rows("val")
    from worker.embeddings import dataset_images_check

    dataset_images_check(dataset_id=dataset.pk, files=paths)  # the shared image mount, before any epoch
    pixels = FilePixels(paths, preprocess, cache=True)  # one source for both splits, built once ids are known
    train = QuerySet(pixels, *train_rows)
    val = QuerySet(pixels, *val_rows) if val_rows is not None else None
    return train, val


def _lock_take(lock: Path, *, lost_owner: str = "") -> int:
    """Create ``lock`` exclusively and return its handle. A lock left by a training process of this machine that
    died (a SIGKILLed worker: its task is redelivered and resumes), or by ``lost_owner`` (the owner a training
    job's claim took over from, on any machine), is taken over; any other raises ValueError."""
    from worker.claims import owner_is_gone

    try:
        return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            owner = lock.read_text().strip()
        except FileNotFoundError:
            owner = ""
        if owner and (owner == lost_owner or owner_is_gone(owner)):
            try:  # only one of several redelivered tasks moves it away
                lock.rename(lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}"))
                lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}").unlink()
                return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except (FileNotFoundError, FileExistsError):
                pass
        raise ValueError(
            f"another training ({owner or 'unknown'}) is writing to {lock.parent} "
            f"(remove {lock} if no training job is running)"
        ) from None


def model_train(
    *,
    family: str,
    dataset_name: str,
    objective: str,
    epochs: int,
    out_dir: str | Path,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    resume: bool | None = False,
    device: str = "auto",
    init_checkpoint: str | None = None,
    family_config: dict[str, Any] | None = None,
    progress: Callable[..., Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    lost_owner: str = "",
) -> dict[str, Any]:
    """Train ``family`` on the dataset's train split into ``out_dir``; return a summary.

    ``out_dir`` ends up holding the family's checkpoint (``model.safetensors`` + ``config.json`` for demo,
    accepted by ``register_model NAME --family F --checkpoint DIR``), ``trainer_state.pt`` and
    ``train_log.jsonl``. ``resume=True`` continues from the last finished epoch (ValueError without one);
    ``resume=None`` resumes when a state is there and starts fresh otherwise (what a redelivered task wants).
    A lock file in ``out_dir`` (holding ``host:pid:task``) stops two trainings writing the same folder (ValueError
    for the second); one left by a process of this machine that died, or by ``lost_owner``, is taken over.
    """
    import torch

    from models_zoo.qure.families import checkpoint_writer, model_for_training
    from models_zoo.qure.trainer import STATE_FILE, TrainConfig, fashioniq_validation, train
    from worker.claims import worker_identity

    config = TrainConfig(objective=objective, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_NAME
    handle = _lock_take(lock, lost_owner=lost_owner)
    try:
        os.write(handle, worker_identity().encode())
        os.close(handle)
        if resume is None:
            resume = (out / STATE_FILE).is_file()
        elif resume and not (out / STATE_FILE).is_file():
            raise ValueError(f"cannot resume: {out / STATE_FILE} does not exist")
        torch.manual_seed(seed)
        # Build once to learn the family's preprocessing, then read the data with it.
        probe = model_for_training(family, texts=[], init_checkpoint=init_checkpoint, config=family_config)
        train_set, val_set = dataset_query_sets(dataset_name=dataset_name, preprocess=probe.image_preprocessor)
        torch.manual_seed(seed)
        model = model_for_training(family, texts=train_set.texts, init_checkpoint=init_checkpoint, config=family_config)
        if resume:
            # The vocabulary and sizes come from the checkpoint being resumed, not from the texts.
            model = model_for_training(family, texts=[], init_checkpoint=str(out))
        validate = None
        if val_set is not None:
            validate = lambda m: fashioniq_validation(m, val_set, device=device)  # noqa: E731
        records = train(
            model,
            train_set,
            config=config,
            out_dir=out,
            save_model=checkpoint_writer(family),
            validate=validate,
            resume=bool(resume),
            on_epoch=on_epoch,
            progress=progress,
        )
        (out / "training.json").write_text(
            json.dumps({"family": family, "dataset": dataset_name, "config": config.__dict__}, indent=1)
        )
        return {
            "out_dir": str(out),
            "family": family,
            "dataset": dataset_name,
            "objective": objective,
            "epochs_run": len(records),
            "last": records[-1] if records else None,
        }
    finally:
        lock.unlink(missing_ok=True)


class TrainingStopped(Exception):
    """The training job's row is no longer its worker's (cancelled, failed by the reaper, taken over)."""


def training_job_execute(*, job_id: int) -> dict[str, Any]:
    """Run a :class:`~hpbench.catalog.models.TrainingJob`: claim it (queued, or running under a lost worker; see
    :mod:`worker.claims`), keep its heartbeat, train (resuming from the last finished epoch in its folder), store
    the folder in the media storage under ``training/<folder name>/`` and write the summary on the row.

    Returns the summary (``stored``: the storage names), or ``{"status": ...}`` when the job was not claimed or
    stopped being this worker's. A bad request (``ValueError``) fails the job with its message; any other error
    fails it and is raised.
    """
    from django.conf import settings
    from django.utils import timezone

    from hpbench.catalog.models import TrainingJob
    from worker import claims

    owner = claims.worker_identity()
    previous = TrainingJob.objects.filter(pk=job_id).values_list("claimed_by", flat=True).first() or ""
    if not claims.job_claim(model=TrainingJob, pk=job_id, owner=owner, reset={"progress": 0.0, "error": ""}):
        return {"status": TrainingJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"}
    job = TrainingJob.objects.get(pk=job_id)
    mine = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.RUNNING, claimed_by=owner)

    def on_epoch(record: dict[str, Any]) -> None:
        if not mine.update(progress=min(1.0, record["epoch"] / job.epochs)):
            raise TrainingStopped(f"training job {job_id} is no longer {owner}'s")

    def fail(error: str) -> None:
        mine.update(status=TrainingJob.Status.FAILED, error=error[:20000], finished_at=timezone.now())

    with claims.heartbeat(model=TrainingJob, pk=job_id, owner=owner):
        try:
            summary = model_train(
                family=job.family, dataset_name=job.dataset, objective=job.objective, epochs=job.epochs,
                out_dir=job.out_dir, lr=job.lr, batch_size=job.batch_size, seed=job.seed, resume=None,
                device=settings.HPBENCH_DEVICE or "auto", on_epoch=on_epoch, lost_owner=previous,
            )
            summary["stored"] = training_outputs_store(out_dir=job.out_dir,
                                                       prefix=f"training/{Path(job.out_dir).name}")
        except TrainingStopped:
            return {"status": TrainingJob.objects.filter(pk=job_id).values_list("status", flat=True).first()}
        except ValueError as exc:
            fail(str(exc))
            return {"status": TrainingJob.Status.FAILED, "error": str(exc)}
        except Exception as exc:
            fail(f"{type(exc).__name__}: {exc}")
            raise
    mine.update(status=TrainingJob.Status.FINISHED, progress=1.0, summary=summary, finished_at=timezone.now())
    return summary


def training_outputs_store(*, out_dir: str | Path, prefix: str) -> list[str]:
    """Store every file of a finished training folder (not its lock) in the media storage under ``prefix``,
    sub-folders kept, so that the web server and other machines can reach what a worker trained; returns the
    storage names."""
    from hpbench import media

    out = Path(out_dir)
    names = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != LOCK_NAME):
        names.append(media.save_file(f"{prefix.rstrip('/')}/{path.relative_to(out).as_posix()}", path))
    return names
