"""Retention of submitted files: a failed or cancelled submission's checkpoint is deleted after a while.

Run by ``manage.py purge_submission_files`` and by the periodic task ``default.submissions.purge_files``
(``worker/tasks/submission_files.py``, on Celery beat). The rows stay (they count against the quota and keep
their log); only the files go: the uploaded checkpoint or score files and the model's cached embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from hpbench import media
from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import ScoreFile, Submission

PURGED_STATUSES = (Submission.Status.FAILED, Submission.Status.CANCELLED)


@dataclass
class PurgeReport:
    submissions: list[int] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def retention() -> timedelta:
    return timedelta(days=float(settings.HPBENCH_FAILED_SUBMISSION_RETENTION_DAYS))


def submission_files_purge(*, older_than: timedelta | None = None, dry_run: bool = False) -> PurgeReport:
    """Delete the files of submissions that failed or were cancelled more than ``older_than`` ago (default:
    ``HPBENCH_FAILED_SUBMISSION_RETENTION_DAYS``); their model keeps its row with no file. Idempotent.

    Returns which submissions lost files, how many files and bytes were deleted (or would be, ``dry_run``).
    """
    cutoff = timezone.now() - (retention() if older_than is None else older_than)
    report = PurgeReport()
    done = Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
    candidates = (
        Submission.objects.filter(status__in=PURGED_STATUSES, model__isnull=False)
        .filter(done)
        .select_related("model")
        .order_by("id")
    )
    store = media.storage()
    for submission in candidates.iterator():
        model = submission.model
        assert model is not None  # model__isnull=False
        checkpoint = model.checkpoint_file.name or ""
        found: list[tuple[str, int]] = []
        if checkpoint and store.exists(checkpoint):
            found.append((checkpoint, store.size(checkpoint)))
        score_files = [f for f in ScoreFile.objects.filter(model=model) if f.file]
        for name in (f.file.name or "" for f in score_files):
            if name and store.exists(name):
                found.append((name, store.size(name)))
        embedding_folders = _embedding_folders(model.pk)
        embedding_files = [item for folder in embedding_folders for item in media.walk(folder)]
        if not found and not embedding_files and not model.checkpoint_file and not score_files:
            continue
        report.submissions.append(submission.pk)
        for _name, size in found + embedding_files:
            report.files += 1
            report.bytes += size
        if dry_run:
            continue
        if model.checkpoint_file:
            folder = media.parent(checkpoint)
            model.checkpoint_file.delete(save=False)
            ModelEntry.objects.filter(pk=model.pk).update(checkpoint_file="")
            if folder.rsplit("/", 1)[-1] == model.name:
                media.delete_tree(folder)  # the submission's own folder (see submission_create)
        for score_file in score_files:
            score_file.file.delete(save=False)
            ScoreFile.objects.filter(pk=score_file.pk).update(file="")
        for folder in embedding_folders:
            media.delete_tree(folder)
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
        line = f"[{stamp}] files deleted after the retention period"
        Submission.objects.filter(pk=submission.pk).update(
            log=(submission.log + "\n" if submission.log else "") + line
        )
    return report


def _embedding_folders(model_id: int) -> list[str]:
    """The storage folders of a model's embedding stores, one per checkpoint it had (``worker.embeddings``)."""
    try:
        folders, _files = media.storage().listdir("embeddings")
    except FileNotFoundError:
        return []
    return sorted(f"embeddings/{name}" for name in folders if name.startswith(f"model-{model_id}-"))
