"""A submission's jobs and files as its log page shows them (reads only; the caller has checked access).

Workers store full errors on job rows (exception, traceback, file paths) for staff; anyone else reads them
through :func:`hpbench.redact.researcher_text` (no traceback frames, no server paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from hpbench.catalog.models import RetrievalRun
from hpbench.leaderboard.models import ModelScore, ScoreFile, Submission
from hpbench.redact import researcher_text


@dataclass(frozen=True)
class Job:
    """One job of a submission: a retrieval run or a preference score."""

    kind: str  # "retrieval" | "score"
    target: str  # "fiq/val" | "hp-fashioniq-v1"
    status: str
    progress: float
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    summary: str  # the job's headline figure once finished


def submission_jobs(*, submission: Submission, for_staff: bool) -> list[Job]:
    """Every retrieval run and preference score of the submission's model, oldest first; errors shown in full to
    staff and through :func:`~hpbench.redact.researcher_text` to anyone else."""
    if submission.model_id is None:
        return []
    clean = (lambda t: t) if for_staff else researcher_text
    jobs = [
        Job(kind="retrieval", target=f"{r.dataset.name}/{r.split}", status=r.status, progress=r.progress,
            created_at=r.created_at, started_at=r.started_at, finished_at=r.finished_at, error=clean(r.error),
            summary=_recall_summary(r))
        for r in RetrievalRun.objects.filter(model_id=submission.model_id).select_related("dataset")
    ] + [
        Job(kind="score", target=s.benchmark.label, status=s.status, progress=s.progress, created_at=s.created_at,
            started_at=s.started_at, finished_at=s.computed_at, error=clean(s.error),
            summary=(f"agreement {s.agreement:.3f}, preference ratio {s.preference_ratio:.3f} on {s.n_pairs} pairs"
                     if s.status == "finished" and s.agreement is not None and s.preference_ratio is not None
                     else ""))
        for s in ModelScore.objects.filter(model_id=submission.model_id).select_related("benchmark")
    ]
    return sorted(jobs, key=lambda j: (j.created_at is None, j.created_at, j.kind))


def _recall_summary(run: RetrievalRun) -> str:
    from hpbench.leaderboard.selectors import recall_label, recall_summary

    if run.status != "finished":
        return ""
    value = recall_summary(run.metrics, run.dataset)
    return f"{recall_label(run.dataset)} {value:.2f}" if value is not None else ""


@dataclass(frozen=True)
class SubmittedFile:
    name: str
    kind: str
    size: int | None
    detail: str


def submission_files(*, submission: Submission) -> list[SubmittedFile]:
    """The files the submission uploaded: its checkpoint (name and size) or its score files (target, rows,
    sha256). Names only, never the server's path."""
    model = submission.model
    if model is None:
        return []
    files: list[SubmittedFile] = []
    if model.checkpoint_file:
        try:
            size = model.checkpoint_file.size
        except OSError:  # deleted after the retention period
            size = None
        files.append(SubmittedFile(name=PurePath(model.checkpoint_file.name or "").name, kind="checkpoint", size=size,
                                   detail="" if size is not None else "deleted after the retention period"))
    for f in ScoreFile.objects.filter(model=model).select_related("benchmark", "dataset"):
        dataset = f.dataset.name if f.dataset is not None else ""
        target = f.benchmark.label if f.benchmark is not None else f"{dataset}/{f.split} ({f.metric})"
        files.append(SubmittedFile(name=PurePath(f.file.name or "").name, kind=f"score file for {target}", size=None,
                                   detail=f"{f.rows} rows, sha256 {f.sha256[:16]}…"))
    return files
