"""Writes for score-file models: a researcher's score-file submission, staff registration, and their jobs.

A score-file model is a ``ModelEntry`` of family ``scores`` with one :class:`ScoreFile` per benchmark or dataset
split it was scored on. Its jobs are the same rows as a model run's (a ``ModelScore`` per benchmark, a
``RetrievalRun`` per split), computed by ``worker/scorefiles.py`` on the ``default`` queue with the same metric
code, so status, progress, quota, privacy and pages work as for checkpoints. Web-safe (no torch).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.db import transaction

from hpbench import dispatch
from hpbench.catalog.models import ModelEntry, RetrievalRun
from hpbench.catalog.protocol import RANKING_DEPTH
from hpbench.leaderboard.models import PreferenceBenchmark, ScoreFile, Submission
from hpbench.leaderboard.scorefiles import SCORES_FAMILY, ScoreFileError, ValidatedFile, validate_score_file
from hpbench.leaderboard.services.scores import model_scores_request
from hpbench.leaderboard.services.submissions import (
    QuotaExceeded,
    submission_enqueue,
    submissions_counted_today,
    submissions_per_day,
)


def score_files_validate(files: Sequence[IO[bytes]]) -> list[ValidatedFile]:
    """Validate every file (see ``hpbench.leaderboard.scorefiles``); two files may not score the same target.

    ``files`` are uploaded files or open binary files with a ``name``. Raises :class:`ScoreFileError`.
    """
    if not files:
        raise ScoreFileError("scores: upload at least one score file")
    validated: list[ValidatedFile] = []
    targets: dict[tuple, str] = {}
    for handle in files:
        name = Path(getattr(handle, "name", "") or "").name
        size = getattr(handle, "size", None)
        if size is None:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(0)
        item = validate_score_file(handle, name=name, size=size)
        if item.target in targets:
            first = targets[item.target]
            raise ScoreFileError(f"file {name!r}: scores {item.target_label} again (already in {first!r})")
        targets[item.target] = name
        validated.append(item)
    return validated


def score_files_store(*, model: ModelEntry, files: Sequence[IO[bytes]], validated: Sequence[ValidatedFile]) -> bool:
    """Save the files as the model's score files, replacing any earlier file for the same target; returns
    whether anything changed (a file with the same content as the stored one is kept)."""
    changed = False
    for handle, item in zip(files, validated, strict=True):
        fields = {"kind": item.kind, "rows": item.rows, "sha256": item.sha256}
        target: dict[str, object]
        if item.relevance is not None:
            target = {"benchmark": item.relevance.benchmark}
        else:
            assert item.rankings is not None
            target = {"dataset": item.rankings.protocol.dataset, "split": item.rankings.protocol.split,
                      "metric": item.rankings.metric}
        stored = ScoreFile.objects.filter(model=model, kind=item.kind, **target)
        if stored.filter(sha256=item.sha256).exists():
            continue
        stored.delete()
        row = ScoreFile(model=model, **target, **fields)
        handle.seek(0)
        row.file.save(item.name, handle if isinstance(handle, File) else File(handle), save=False)
        row.save()
        changed = True
    return changed


def benchmarks_with_files(*, model: ModelEntry, benchmarks: Iterable[PreferenceBenchmark]) -> list[PreferenceBenchmark]:
    """The benchmarks among ``benchmarks`` that the score-file model has a relevance file for."""
    have = set(model.score_files.filter(kind=ScoreFile.Kind.RELEVANCE).values_list("benchmark_id", flat=True))
    return [b for b in benchmarks if b.pk in have]


@transaction.atomic
def score_files_enqueue(*, model: ModelEntry, force: bool = False) -> list[str]:
    """Queue a ``ModelScore`` per benchmark and a ``RetrievalRun`` per split the model has files for.

    Returns log lines. Dispatched after commit to the ``default`` queue (nothing here needs a GPU).
    """
    benchmarks = list(PreferenceBenchmark.objects.filter(score_files__model=model).distinct())
    scores = model_scores_request(model=model, benchmarks=benchmarks, force=force)
    lines = [f"queued scoring from the score file on {', '.join(s.benchmark.label for s in scores)}"] if scores else []
    splits = model.score_files.filter(kind=ScoreFile.Kind.RANKING).values_list("dataset_id", "split").distinct()
    for dataset_id, split in splits.order_by("dataset_id", "split"):
        run = RetrievalRun.objects.create(model=model, dataset_id=dataset_id, split=split, topk=RANKING_DEPTH)
        dispatch.task_send_on_commit(dispatch.SCOREFILE_RANKINGS, run.pk)
        lines.append(f"queued Recall@K from the ranking file(s) as run {run.pk} on {run.dataset.name}/{split}")
    return lines or ["nothing to score: no score files"]


@transaction.atomic
def score_submission_create(
    *, owner, files: Sequence[IO[bytes]], description: str = "", link: str = ""
) -> Submission:
    """A researcher's score files as a private model with its evaluation queued.

    Every file is parsed and validated before anything is written. Raises :class:`ScoreFileError` for a bad
    file and ``QuotaExceeded`` past the daily quota (shared with checkpoint submissions).
    """
    if link:
        try:
            URLValidator(schemes=["http", "https"])(link)
        except ValidationError:
            raise ScoreFileError(f"link {link[:200]!r}: expected an http(s) URL") from None
    validated = score_files_validate(files)
    get_user_model().objects.select_for_update().get(pk=owner.pk)  # one quota check at a time per owner
    used, limit = submissions_counted_today(owner=owner), submissions_per_day()
    if used >= limit:
        raise QuotaExceeded(f"quota: {used} of {limit} submissions used in the last 24 hours")
    entry = ModelEntry.objects.create(
        name=f"sub-{uuid.uuid4().hex[:12]}", family=SCORES_FAMILY, owner=owner, is_public=False,
        description=description, link=link,
    )
    score_files_store(model=entry, files=files, validated=validated)
    submission = Submission.objects.create(owner=owner, model=entry, family=SCORES_FAMILY, description=description,
                                           link=link)
    return submission_enqueue(submission=submission)


@transaction.atomic
def score_model_register(
    *, name: str, files: Sequence[IO[bytes]], description: str = "", link: str = "", is_public: bool = True,
    is_baseline: bool = False, rescore: bool = False,
) -> ModelEntry:
    """Staff: register (or update) model ``name`` from score files and queue its scores (again when a file
    changed, or ``rescore``). Raises :class:`ScoreFileError` for a bad file and ``ValueError`` when ``name`` is a
    model of another family."""
    validated = score_files_validate(files)
    entry = ModelEntry.objects.filter(name=name).first()
    if entry is not None and entry.family != SCORES_FAMILY:
        raise ValueError(f"model {name!r} exists with family {entry.family}, not {SCORES_FAMILY}")
    if entry is None:
        entry = ModelEntry.objects.create(name=name, family=SCORES_FAMILY)
    ModelEntry.objects.filter(pk=entry.pk).update(description=description, link=link, is_public=is_public,
                                                  is_baseline=is_baseline)
    changed = score_files_store(model=entry, files=files, validated=validated)
    score_files_enqueue(model=entry, force=changed or rescore)
    entry.refresh_from_db()
    return entry
