"""Writes for score-file models: a researcher's score-file submission, staff registration, and their jobs.

A score-file model is a ``ModelEntry`` of family ``scores`` with one :class:`ScoreFile` per benchmark or dataset
split it was scored on. A researcher's files are stored first with no target (pending) and validated on a
worker (``worker/scorefiles.py``), which sets their targets; staff registrations are validated at once. Its jobs
are the same rows as a model run's (a ``ModelScore`` per benchmark, a ``RetrievalRun`` per split), computed by
``worker/scorefiles.py`` on the ``default`` queue with the same metric code, so status, progress, quota, privacy
and pages work as for checkpoints. Web-safe (no torch).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from hpbench import dispatch
from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.catalog.protocol import RANKING_DEPTH
from hpbench.leaderboard.models import PreferenceBenchmark, ScoreFile, Submission
from hpbench.leaderboard.scorefiles import (
    SCORES_FAMILY,
    ScoreFileError,
    ValidatedFile,
    check_file_basics,
    file_sha256,
    score_file_kind,
    score_file_precheck,
    validate_score_file,
)
from hpbench.leaderboard.services.scores import model_scores_request
from hpbench.leaderboard.services.submissions import (
    QuotaExceeded,
    SubmissionError,
    model_identity,
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


def _upload_name(handle: IO[bytes]) -> str:
    return Path(getattr(handle, "name", "") or "").name


def _upload_size(handle: IO[bytes]) -> int:
    size = getattr(handle, "size", None)
    if size is None:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(0)
    return int(size)


@transaction.atomic
def score_submission_create(
    *, owner, files: Sequence[IO[bytes]], description: str = "", link: str = "", name: str = "",
    paper_url: str = "", code_url: str = "", licence: str = "",
) -> Submission:
    """A researcher's score files, stored as a private model's pending files, with their check queued.

    While the upload waits, only bounded checks run: the link, each file's name and size, then the daily quota
    (shared with checkpoint submissions), then a Parquet file's metadata (:func:`score_file_precheck`). No row
    is read here: the task ``default.scorefiles.check`` validates every file on a worker, in a child process
    with a memory limit, then queues the scoring or fails the submission naming the file and its first bad
    line (:func:`score_files_check_finish`). Raises :class:`ScoreFileError` for a refused link or file and
    ``QuotaExceeded`` past the quota.
    """
    if link:
        try:
            URLValidator(schemes=["http", "https"])(link)
        except ValidationError:
            raise ScoreFileError(f"link {link[:200]!r}: expected an http(s) URL") from None
    try:
        identity = model_identity(name=name, paper_url=paper_url, code_url=code_url, licence=licence)
    except SubmissionError as exc:
        raise ScoreFileError(str(exc)) from None
    if not files:
        raise ScoreFileError("scores: upload at least one score file")
    for handle in files:
        check_file_basics(name=_upload_name(handle), size=_upload_size(handle))
    get_user_model().objects.select_for_update().get(pk=owner.pk)  # one quota check at a time per owner
    used, limit = submissions_counted_today(owner=owner), submissions_per_day()
    if used >= limit:
        raise QuotaExceeded(f"quota: {used} of {limit} submissions used in the last 24 hours")
    kinds = [score_file_kind(score_file_precheck(h, name=_upload_name(h), size=_upload_size(h))) for h in files]
    entry = ModelEntry.objects.create(
        **identity, family=SCORES_FAMILY, owner=owner, is_public=False, description=description, link=link,
    )
    for handle, kind in zip(files, kinds, strict=True):
        row = ScoreFile(model=entry, kind=kind, rows=0, sha256=file_sha256(handle))
        # A folder of the model's own: the file keeps its name (messages name it), never another's.
        row.file.save(f"{entry.name}/{_upload_name(handle)}", handle if isinstance(handle, File) else File(handle),
                      save=False)
        row.save()
    submission = Submission.objects.create(
        owner=owner, model=entry, family=SCORES_FAMILY, description=description, link=link,
        log=f"[{timezone.now():%Y-%m-%d %H:%M:%S}] {len(files)} score file(s) received; queued for validation",
    )
    dispatch.task_send_on_commit(dispatch.SCOREFILE_CHECK, submission.pk)
    return submission


def score_files_pending(*, model: ModelEntry):
    """The model's score files not validated yet (no benchmark or split set)."""
    return model.score_files.filter(benchmark__isnull=True, dataset__isnull=True).order_by("id")


@transaction.atomic
def score_files_check_finish(*, submission_id: int, outcomes: Sequence[tuple[int, dict]]) -> Submission:
    """Record the worker's validation of a submission's pending score files and queue its scoring, or fail it.

    ``outcomes``: per ``ScoreFile`` id, ``{"error": message}`` or ``{"kind", "rows", "benchmark_id"}`` /
    ``{"kind", "rows", "dataset_id", "split", "metric"}``. The first error (or a second file for the same
    target) fails the submission with that message first in its log. A submission no longer running (cancelled)
    is left alone.
    """
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    if submission.status != Submission.Status.RUNNING or submission.model is None:
        return submission
    rows = {row.pk: row for row in score_files_pending(model=submission.model)}
    error = next((o["error"] for _, o in outcomes if "error" in o), None)
    targets: dict[tuple, str] = {}
    if error is None:
        for pk, outcome in outcomes:
            row = rows[pk]
            name = Path(row.file.name or "").name
            if outcome.get("benchmark_id") is not None:
                target: tuple = ("benchmark", outcome["benchmark_id"])
                label = str(PreferenceBenchmark.objects.get(pk=outcome["benchmark_id"]).label)
            else:
                target = ("split", outcome["dataset_id"], outcome["split"], outcome["metric"])
                dataset = Dataset.objects.get(pk=outcome["dataset_id"])
                label = f"{dataset.name}/{outcome['split']} ({outcome['metric']})"
            if target in targets:
                error = f"file {name!r}: scores {label} again (already in {targets[target]!r})"
                break
            targets[target] = name
            row.kind, row.rows = outcome["kind"], outcome["rows"]
            row.benchmark_id = outcome.get("benchmark_id")
            row.dataset_id = outcome.get("dataset_id")
            row.split, row.metric = outcome.get("split", ""), outcome.get("metric", "")
    if error is not None:
        Submission.objects.filter(pk=submission.pk).update(
            status=Submission.Status.FAILED, finished_at=timezone.now(),
            log=f"ERROR {error}\n{submission.log}\n[{timezone.now():%Y-%m-%d %H:%M:%S}] score files refused",
        )
        submission.refresh_from_db()
        return submission
    for row in rows.values():
        row.save(update_fields=["kind", "rows", "benchmark", "dataset", "split", "metric"])
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
