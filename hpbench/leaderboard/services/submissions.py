"""Researchers' submissions: created (daily quota, upload checks), enqueued, refreshed from their runs,
cancelled, published, re-run."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.inputs import json_problem, text_problem
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.scores import model_scores_request


class SubmissionError(ValueError):
    """A submission is refused; the message says why (and which field)."""


class QuotaExceeded(SubmissionError):
    pass


#: A researcher's model name: a slug of 3 to 64 characters (lower-case letters, digits, '-', '_'), not "sub-…".
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")


def model_identity(*, name: str = "", paper_url: str = "", code_url: str = "", licence: str = "") -> dict[str, str]:
    """The ``ModelEntry`` fields a researcher sets: the name (unique across the board, case-insensitively, so
    unique per benchmark too; ``sub-<hex>`` when none is given), the paper and code links (http(s) only) and
    the licence. Raises ``SubmissionError`` naming the field."""
    from hpbench.catalog.links import link_problem

    for field, value in (("name", name), ("paper_url", paper_url), ("code_url", code_url), ("licence", licence)):
        if problem := text_problem(value):
            raise SubmissionError(f"{field}: {problem}")
    name = name.strip()
    if name:
        if not MODEL_NAME.fullmatch(name) or name.startswith("sub-"):
            raise SubmissionError(f"name {name[:80]!r}: expected 3 to 64 lower-case letters, digits, '-' or '_', "
                                  "starting with a letter or digit (and not 'sub-', the platform's own names)")
        if ModelEntry.objects.filter(name__iexact=name).exists():
            raise SubmissionError(f"name {name!r}: already taken on the leaderboard; choose another")
    else:
        name = f"sub-{uuid.uuid4().hex[:12]}"
    for field, value in (("paper_url", paper_url), ("code_url", code_url)):
        if link_problem(value):
            raise SubmissionError(f"{field}: {link_problem(value)}")
    if len(licence) > 100:
        raise SubmissionError(f"licence: {len(licence)} characters, over the limit of 100")
    return {"name": name, "paper_url": paper_url, "code_url": code_url, "licence": licence.strip()}


def submissions_per_day() -> int:
    return int(getattr(settings, "HPBENCH_SUBMISSIONS_PER_DAY", 5))


def _check_upload(file: UploadedFile) -> None:
    from hpbench.leaderboard.uploads import UploadError, check_checkpoint_upload

    try:
        check_checkpoint_upload(file)
    except UploadError as exc:
        raise SubmissionError(str(exc)) from None


def _check_folder_upload(file: UploadedFile, *, family: str, required: tuple[str, ...]) -> dict[str, str]:
    from hpbench.leaderboard.uploads import UploadError, check_folder_upload

    try:
        return check_folder_upload(file, family=family, required=required)
    except UploadError as exc:
        raise SubmissionError(str(exc)) from None


def _store_folder(*, file: UploadedFile, folder: dict[str, str], prefix: str) -> None:
    """Unpack the checked archive's files into ``prefix/`` of the media storage, each bounded by its declared
    size (read from the directory again) and the checkpoint limit."""
    import tempfile

    from hpbench import media
    from hpbench.leaderboard.uploads import max_checkpoint_bytes
    from models_zoo.archives import ArchiveError, copy_archive_member

    name = file.name or ""
    for relative, member in sorted(folder.items()):
        with tempfile.TemporaryFile() as out:
            try:
                copy_archive_member(file, name=name, member=member, target=out, limit=max_checkpoint_bytes())
            except ArchiveError as exc:
                raise SubmissionError(str(exc)) from None
            out.seek(0)
            media.save_bytes(f"{prefix}/{relative}", out)


@transaction.atomic
def submission_create(
    *,
    owner,
    family: str,
    file: UploadedFile,
    variant: str = "",
    config: dict | None = None,
    description: str = "",
    link: str = "",
    vit_checkpoint: UploadedFile | None = None,
    name: str = "",
    paper_url: str = "",
    code_url: str = "",
    licence: str = "",
) -> Submission:
    """Register a researcher's checkpoint as a private model and queue its evaluation.

    ``config`` holds the family's bounded options and ``base_model`` (``hpbench.catalog.family_config``): no
    server paths, no limits. ``link`` must be an http(s) URL. ``vit_checkpoint`` (``blip2_cir`` only): the
    ``clip_L`` ViT file for a QuRe checkpoint without ViT weights, checked as a checkpoint and stored beside it
    as ``clip_vit_L.pth`` / ``.safetensors``, where the loader looks for it. ``name``, ``paper_url``,
    ``code_url``, ``licence``: the model's identity on the leaderboard (:func:`model_identity`).
    Raises ``SubmissionError`` for an unknown family/variant, a refused config key or link, or a bad file and
    ``QuotaExceeded`` when the owner already has ``HPBENCH_SUBMISSIONS_PER_DAY`` submissions in the last
    24 hours (every submission counts, failed and cancelled ones too).
    """
    from hpbench.catalog.family_config import ConfigError, researcher_config_clean
    from hpbench.catalog.links import link_problem
    from models_zoo import FAMILIES, VARIANTS  # cheap: no torch at import
    from models_zoo.registry import folder_files, uploadable_families

    if family not in FAMILIES:
        raise SubmissionError(f"family {family!r}: unknown; known: {', '.join(sorted(FAMILIES))}")
    submittable = [f.name for f in uploadable_families()]
    if family not in submittable:
        raise SubmissionError(f"family {family!r}: registered by staff, not submitted; submittable: "
                              f"{', '.join(submittable)}")
    if variant and variant not in VARIANTS[family]:
        raise SubmissionError(f"variant {variant!r}: unknown for {family}; known: {', '.join(VARIANTS[family])}")
    # Text PostgreSQL cannot store (NUL, lone surrogates) would be a 500 at the INSERT: refuse it here.
    for field, value in (("description", description), ("link", link)):
        if isinstance(value, str) and (problem := text_problem(value)):
            raise SubmissionError(f"{field}: {problem}")
    if config and isinstance(config, dict) and (problem := json_problem(config)):
        raise SubmissionError(f"config: {problem}")
    try:
        config = researcher_config_clean(family=family, config=config)
    except ConfigError as exc:
        raise SubmissionError(str(exc)) from None
    if link_problem(link):
        raise SubmissionError(f"link: {link_problem(link)}")
    identity = model_identity(name=name, paper_url=paper_url, code_url=code_url, licence=licence)
    # The bounded structural checks run before the quota is taken: a refused file costs no submission.
    required = folder_files(family)
    members = _check_folder_upload(file, family=family, required=required) if required else None
    if members is None:
        _check_upload(file)
    if vit_checkpoint is not None:
        if family != "blip2_cir":
            raise SubmissionError(f"vit_checkpoint: only blip2_cir (QuRe clip_L) takes a ViT file, not {family}")
        _check_upload(vit_checkpoint)
    # Lock the owner's row so two concurrent uploads cannot both pass the quota.
    get_user_model().objects.select_for_update().get(pk=owner.pk)
    used = submissions_counted_today(owner=owner)
    limit = submissions_per_day()
    if used >= limit:
        raise QuotaExceeded(f"quota: {used} of {limit} submissions used in the last 24 hours")
    entry = ModelEntry(
        **identity,
        family=family,
        variant=variant,
        config=config or {},
        owner=owner,
        is_public=False,
        description=description,
        link=link,
    )
    # A folder of its own: loaders read companion files "beside the checkpoint" (clip_vit_L.pth, vocab.txt,
    # clip4cir.json), which must never be another researcher's upload.
    from hpbench import media

    # The model's own folder: a researcher now chooses the name, so files left there by a deleted model of the
    # same name (none is live: names are unique) are removed first; a loader never reads another's files.
    own = str(PurePosixPath(entry.checkpoint_file.field.generate_filename(entry, f"{entry.name}/x")).parent)
    if media.walk(own):
        media.delete_tree(own)
    if members is not None:
        # A folder-shaped checkpoint: its files are unpacked into the entry's folder; the entry names the last
        # required file there, and the worker hands the loader the folder (worker.embeddings.checkpoint_local).
        try:
            _store_folder(file=file, folder=members, prefix=own)
        except BaseException:
            media.delete_tree(own)
            raise
        entry.checkpoint_file.name = f"{own}/{required[-1]}"
    else:
        # _check_upload refused a file without a checkpoint's name.
        entry.checkpoint_file.save(f"{entry.name}/{Path(file.name or '').name}", file, save=False)
    if vit_checkpoint is not None:
        from models_zoo import CLIP_L_VIT_STEM

        folder = PurePosixPath(entry.checkpoint_file.name or "").parent
        suffix = Path(vit_checkpoint.name or "").suffix.lower()
        vit_checkpoint.seek(0)
        media.save_bytes(str(folder / f"{CLIP_L_VIT_STEM}{suffix}"), vit_checkpoint)
    entry.save()
    submission = Submission.objects.create(
        owner=owner, model=entry, family=family, variant=variant, config=config or {},
        description=description, link=link,
    )
    return submission_enqueue(submission=submission)


def submissions_counted_today(*, owner) -> int:
    """The owner's submissions in the last 24 hours, whatever became of them (failed and cancelled count)."""
    since = timezone.now() - timedelta(days=1)
    return Submission.objects.filter(owner=owner, created_at__gte=since).count()


def submission_datasets() -> list[tuple[Dataset, str]]:
    """Where submissions run retrieval: ``HPBENCH_SUBMISSION_DATASETS`` ("name" or "name:split" items),
    else the datasets of the active benchmarks, on split "val" where it has queries (else the first split)."""
    configured = getattr(settings, "HPBENCH_SUBMISSION_DATASETS", None)
    out: list[tuple[Dataset, str]] = []
    if configured:
        for item in configured:
            name, _, split = str(item).partition(":")
            out.append((Dataset.objects.get(name=name), split or "val"))
        return out
    from hpbench.leaderboard.selectors import recall_split  # the split the leaderboard shows: one rule

    for dataset in Dataset.objects.filter(preference_benchmarks__is_active=True).distinct().order_by("id"):
        if dataset.queries.exists():
            out.append((dataset, recall_split(dataset)))
    return out


def _log(submission: Submission, line: str) -> str:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    return (submission.log + "\n" if submission.log else "") + f"[{stamp}] {line}"


@transaction.atomic
def submission_enqueue(*, submission: Submission, force: bool = False) -> Submission:
    """Queue retrieval on the configured datasets and scoring on every active benchmark."""
    from hpbench.catalog.services import retrieval_run_create

    model = submission.model
    if model is None:
        raise SubmissionError(f"submission {submission.pk}: has no model")
    lines = []
    if model.family == ModelEntry.Family.SCORES:  # the authors' scores: their files are scored, nothing runs
        from hpbench.leaderboard.score_submissions import score_files_enqueue

        lines = score_files_enqueue(model=model, force=force)
    else:
        for dataset, split in submission_datasets():
            try:
                run = retrieval_run_create(model=model, dataset=dataset, split=split)
                lines.append(f"queued retrieval run {run.pk} on {dataset.name}/{split}")
            except ValueError as exc:
                lines.append(f"retrieval on {dataset.name}/{split} skipped: {exc}")
        scores = model_scores_request(model=model, force=force)
        lines.append(f"queued scoring on {len(scores)} benchmark(s)")
    submission.log = _log(submission, "; ".join(lines))
    submission.status = Submission.Status.QUEUED
    submission.progress = 0.0
    submission.finished_at = None
    submission.save(update_fields=["log", "status", "progress", "finished_at"])
    return submission


def _stuck_limit() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "CELERY_TASK_HARD_TIME_LIMIT", 6 * 3600)) + 60)


def submission_refresh(*, submission: Submission) -> Submission:
    """Bring the submission's status and progress up to date with its retrieval runs and scores.

    Jobs running longer than the hard time limit are failed as stuck. Errors go first in the log.
    """
    if submission.model_id is None or submission.status in Submission.DONE:
        return submission
    cutoff = timezone.now() - _stuck_limit()
    message = "timed out: no result within the task time limit"
    ModelScore.objects.filter(model_id=submission.model_id, status=ModelScore.Status.RUNNING,
                              started_at__lt=cutoff).update(status=ModelScore.Status.FAILED, error=message)
    RetrievalRun.objects.filter(model_id=submission.model_id, status=RetrievalRun.Status.RUNNING,
                                started_at__lt=cutoff).update(status=RetrievalRun.Status.FAILED, error=message)
    children = [
        (f"retrieval run {r.pk} ({r.dataset.name}/{r.split})", r.status, r.progress, r.error)
        for r in RetrievalRun.objects.filter(model_id=submission.model_id, created_at__gte=submission.created_at)
        .select_related("dataset")
    ] + [
        (f"score on {s.benchmark.label}", s.status, s.progress, s.error)
        for s in ModelScore.objects.filter(model_id=submission.model_id).select_related("benchmark")
    ]
    if not children:
        return submission
    statuses = [c[1] for c in children]
    progress = float(np.mean([1.0 if s == "finished" else p for _, s, p, _ in children]))
    update: dict[str, Any] = {"progress": progress}
    failed = [c for c in children if c[1] in ("failed", "cancelled")]
    if failed and all(s in ("finished", "failed", "cancelled") for s in statuses):
        errors = "\n".join(f"ERROR {what}: {err or status}" for what, status, _, err in failed)
        update.update(status=Submission.Status.FAILED, finished_at=timezone.now(),
                      log=errors + "\n" + submission.log)
    elif all(s == "finished" for s in statuses):
        update.update(status=Submission.Status.FINISHED, finished_at=timezone.now(), progress=1.0,
                      log=_log(submission, "all runs finished"))
    elif any(s != "queued" for s in statuses):
        update["status"] = Submission.Status.RUNNING
    # Conditional: a concurrent cancel wins.
    Submission.objects.filter(pk=submission.pk).exclude(status__in=Submission.DONE).update(**update)
    submission.refresh_from_db()
    return submission


@transaction.atomic
def submission_cancel(*, submission: Submission) -> Submission:
    """Cancel a submission that has not ended, with its queued or running jobs. Raises ``SubmissionError``."""
    changed = Submission.objects.filter(pk=submission.pk).exclude(status__in=Submission.DONE).update(
        status=Submission.Status.CANCELLED, finished_at=timezone.now(), log=_log(submission, "cancelled by owner")
    )
    if not changed:
        raise SubmissionError(f"submission {submission.pk}: already {submission.status}, cannot cancel")
    active = ("queued", "running")
    ModelScore.objects.filter(model_id=submission.model_id, status__in=active).update(
        status=ModelScore.Status.CANCELLED
    )
    RetrievalRun.objects.filter(model_id=submission.model_id, status__in=active).update(
        status=RetrievalRun.Status.CANCELLED, finished_at=timezone.now()
    )
    submission.refresh_from_db()
    return submission


def submission_publishable(submission: Submission) -> bool:
    """A failed or cancelled submission has nothing to show: it cannot be published."""
    return submission.status not in (Submission.Status.FAILED, Submission.Status.CANCELLED)


@transaction.atomic
def submission_publish(*, submission: Submission) -> Submission:
    """Make the submission and its model's scores visible to everyone. Raises ``SubmissionError`` for a failed or
    cancelled one (checked again under the row's lock: a concurrent failure wins)."""
    locked = Submission.objects.select_for_update().get(pk=submission.pk)
    if not submission_publishable(locked):
        raise SubmissionError(f"submission {submission.pk}: {locked.status}, cannot be published")
    Submission.objects.filter(pk=submission.pk).update(is_public=True)
    if submission.model_id:
        ModelEntry.objects.filter(pk=submission.model_id).update(is_public=True)
    submission.refresh_from_db()
    return submission


def submission_rerun(*, submission: Submission) -> Submission:
    """Admin: evaluate again from scratch (scores recomputed even when finished)."""
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.SUBMITTED)
    submission.refresh_from_db()
    submission.log = _log(submission, "re-run requested by staff")
    return submission_enqueue(submission=submission, force=True)
