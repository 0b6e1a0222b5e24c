"""Writes for exports: writing the preference dataset to a file, and staff export jobs run by a worker.

Web-safe (no torch). The management command ``export_preferences`` and the task ``default.exports.run``
both go through :func:`export_write`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from hpbench import dispatch, media
from hpbench.exports import writers
from hpbench.exports.models import ExportJob
from hpbench.exports.selectors.card import card_figures
from hpbench.exports.selectors.columns import COLUMNS
from hpbench.exports.selectors.images import image_files
from hpbench.exports.selectors.lookups import DEFAULT_CHUNK
from hpbench.exports.selectors.pairs import benchmark_of
from hpbench.exports.selectors.params import ExportError, ExportParams, params_from_json
from hpbench.exports.selectors.ppi import ppi_document
from hpbench.exports.selectors.rows import rows_iter, rows_total

FORMATS = tuple(ExportJob.Format.values)
SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv", "hf": "", "hpfiq": ".json", "ppi": ".json"}

Progress = Callable[[int, int], None]


@dataclass
class ExportSummary:
    format: str
    level: str
    path: str
    rows: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "level": self.level,
            "path": self.path,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


def export_write(
    *,
    params: ExportParams,
    fmt: str,
    out: str | Path,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the rows ``params`` select to ``out`` in format ``fmt`` (``hf``: ``out`` is a folder).

    ``ppi`` writes the benchmark's prediction-powered agreement inputs as one JSON document
    (:mod:`hpbench.exports.selectors.ppi`). ``progress(done, total)`` is called after each chunk. Returns what was
    written. Raises
    :class:`ExportError` for an unknown format or one that does not fit the level (``hpfiq`` needs votes or a
    benchmark, not comparisons).
    """
    if fmt not in FORMATS:
        raise ExportError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    level = params.effective_level
    if fmt == "hpfiq" and level == "comparisons":
        raise ExportError("format hpfiq: export a benchmark or votes; the layout has no per-comparison rows")
    started = time.perf_counter()
    out = Path(out)
    if fmt == "ppi":
        document = ppi_document(params)
        out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        n_rows = len(document["labelled"]["preference"]) + len(document["candidates"]["p_set1"])
        if progress is not None:
            progress(n_rows, n_rows)
        return ExportSummary(format=fmt, level=level, path=str(out), rows=n_rows,
                             seconds=time.perf_counter() - started,
                             extra={"models": sorted(document["models"]),
                                    "preference_model": document["preference_model"]["version"]})
    total = rows_total(params)
    # The Hugging Face folder adds Image columns beside the names: the files' bytes, for the viewer's thumbnails.
    options = {"images": image_files} if fmt == "hf" else {}
    writer = writers.WRITERS[fmt](out, COLUMNS[level], **options)
    done = 0
    try:
        for rows in rows_iter(params, chunk_size=chunk_size, with_categories=fmt == "hpfiq"):
            writer.write(rows)
            done += len(rows)
            if progress is not None:
                progress(done, total)
    finally:
        writer.close()
    extra: dict[str, Any] = {}
    if fmt == "hf":
        figures = card_figures(params)
        benchmark = benchmark_of(params)
        title = f"hpbench preferences: benchmark {benchmark.label}" if benchmark else f"hpbench preferences ({level})"
        writer.finish(title=title, level=level, figures=figures, filters=params.as_json())
        extra["figures"] = figures
    if fmt == "hpfiq":
        extra["questions"] = writer.questions
        extra["skipped_ties"] = writer.skipped_ties
    return ExportSummary(
        format=fmt, level=level, path=str(out), rows=done, seconds=time.perf_counter() - started, extra=extra
    )


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def exports_dir() -> Path:
    """Where a worker writes a job's file before storing it: a local folder under the var folder."""
    return Path(settings.VAR_DIR) / "exports"


#: The media storage folder of finished jobs' files (private: downloaded through ``api.download`` only).
EXPORTS_PREFIX = "exports"


def export_job_create(*, requested_by, fmt: str, params: ExportParams) -> ExportJob:
    """Queue an export for a staff member; the worker is told after commit. Raises ExportError for a bad
    format or a format that does not fit the level, and PermissionError for a non-staff caller."""
    if not (requested_by and requested_by.is_active and requested_by.is_staff):
        raise PermissionError("exports are for staff only")
    if fmt not in FORMATS:
        raise ExportError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "hpfiq" and params.effective_level == "comparisons":
        raise ExportError("format hpfiq: export a benchmark or votes; the layout has no per-comparison rows")
    if fmt == "ppi":
        ppi_document(params)  # refused now, naming why, rather than by a failed job
    job = ExportJob.objects.create(requested_by=requested_by, format=fmt, params=params.as_json())
    dispatch.task_send_on_commit(dispatch.EXPORT_RUN, job.pk)
    return job


def export_job_run(*, job_id: int, owner: str) -> ExportJob:
    """Run a job ``owner`` claimed (:func:`worker.claims.job_claim`): write its file, then mark it finished, or
    failed with the error. Each write applies only while the job is still ``owner``'s, so a worker that outlived
    its claim (taken over, or failed by the reaper) changes nothing.

    The file is written locally, then stored in the media storage (``exports/``), where the web process reads
    it for the download. A Hugging Face folder is zipped for download. Unexpected errors are recorded and
    re-raised.
    """
    job = ExportJob.objects.get(pk=job_id)
    mine = ExportJob.objects.filter(pk=job_id, claimed_by=owner, status=ExportJob.Status.RUNNING)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            mine.update(progress=min(1.0, done / total) if total else 1.0, rows=done)

    base = exports_dir() / f"job-{job.pk}-{job.token[:12]}"
    target = base.with_suffix(SUFFIX[job.format]) if SUFFIX[job.format] else base
    _partial_files_remove(job_id=job.pk)  # an earlier attempt's, and those of jobs that ended without cleaning up
    try:
        params = params_from_json(job.params)
        summary = export_write(params=params, fmt=job.format, out=target, progress=progress)
        file_path = target
        if job.format == "hf":
            file_path = Path(shutil.make_archive(str(base), "zip", root_dir=target))
            shutil.rmtree(target, ignore_errors=True)
        try:
            stored = media.save_file(f"{EXPORTS_PREFIX}/{file_path.name}", file_path)
        finally:
            file_path.unlink(missing_ok=True)
    except ExportError as exc:
        _partial_files_remove(job_id=job.pk, only_ended=False)
        mine.update(status=ExportJob.Status.FAILED, error=str(exc), finished_at=timezone.now())
        return ExportJob.objects.get(pk=job_id)
    except Exception as exc:
        _partial_files_remove(job_id=job.pk, only_ended=False)
        mine.update(status=ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now())
        raise
    mine.update(
        status=ExportJob.Status.FINISHED,
        progress=1.0,
        rows=summary.rows,
        file_path=stored,
        summary=summary.as_dict() | {"path": file_path.name},
        finished_at=timezone.now(),
    )
    return ExportJob.objects.get(pk=job_id)


def _partial_files_remove(*, job_id: int, only_ended: bool = True) -> None:
    """Remove the local files a failed or killed attempt left in :func:`exports_dir`: job ``job_id``'s (a new
    attempt writes them again) and, unless ``only_ended`` is False, those of every job that is no longer queued or
    running (a worker killed mid-write never cleaned up; the job's stored copy, if any, is in the media storage)."""
    folder = exports_dir()
    if not folder.is_dir():
        return
    leftovers: dict[int, list[Path]] = {}
    for path in folder.iterdir():
        number = path.name.split("-")[1] if path.name.startswith("job-") else ""
        if number.isdigit():
            leftovers.setdefault(int(number), []).append(path)
    remove = {job_id}
    if only_ended:
        live = set(ExportJob.objects.filter(pk__in=leftovers, status__in=[ExportJob.Status.QUEUED,
                                                                          ExportJob.Status.RUNNING])
                   .values_list("pk", flat=True))
        remove |= set(leftovers) - live
    for pk in remove:
        for path in leftovers.get(pk, []):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def download_name(job: ExportJob) -> str:
    """The file name offered to the browser."""
    suffix = Path(job.file_path).suffix
    return f"hpbench-export-{job.pk}-{job.format}{suffix}"
