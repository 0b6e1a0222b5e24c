"""Checking and scoring a model from its authors' score files (``default`` queue; no torch, no model to load).

A researcher's files are validated here first (:func:`score_files_check_execute`), each in a child process with
a memory and CPU limit (``worker/scorefile_check.py``), never in the web process.

The jobs are the rows a model run fills (``ModelScore``, ``RetrievalRun``), claimed the same way; the file is
validated again (``hpbench.leaderboard.scorefiles``) and its relevances or rankings go through the same metric
code as a model's: ``model_score_store`` (preference ratio, agreement, intervals) and
``hpbench.metrics.retrieval`` (Recall@K).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from urllib.parse import quote

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from hpbench import media
from hpbench.catalog.models import Image, RetrievalRun
from hpbench.catalog.protocol import RANKING_DEPTH
from hpbench.catalog.results import topk_bytes
from hpbench.leaderboard.models import ModelScore, ScoreFile, Submission
from hpbench.leaderboard.score_submissions import score_files_check_finish, score_files_pending
from hpbench.leaderboard.scorefiles import (
    SCORES_FAMILY,
    Rankings,
    ScoreFileError,
    rankings_recall,
    read_rankings,
    read_relevance,
    relevance_set_scores,
)
from hpbench.leaderboard.services.scores import model_score_fail, model_score_store
from hpbench.leaderboard.services.submissions import submission_refresh
from worker import claims


def score_files_check_execute(*, submission_id: int) -> str:
    """Claim a score-file submission (submitted -> running), validate each pending file in a child process
    with ``HPBENCH_SCORE_CHECK_MEMORY_BYTES`` of address space and ``HPBENCH_SCORE_CHECK_SECONDS``, then queue its
    scoring or fail it with the first error (``score_files_check_finish``). Returns the submission's status; a
    submission already claimed or ended is left alone."""
    claimed = Submission.objects.filter(
        pk=submission_id, status=Submission.Status.SUBMITTED, family=SCORES_FAMILY
    ).update(status=Submission.Status.RUNNING, log=Concat(F("log"), Value("\nvalidating the score files")))
    if not claimed:
        return Submission.objects.filter(pk=submission_id).values_list("status", flat=True).first() or "missing"
    submission = Submission.objects.select_related("model").get(pk=submission_id)
    outcomes: list[tuple[int, dict]] = []
    try:
        assert submission.model is not None  # a score-file submission always has its model
        for row in score_files_pending(model=submission.model):
            outcome = _check_in_child(row)
            outcomes.append((row.pk, outcome))
            if "error" in outcome:
                break
    except Exception as exc:  # the submission says what went wrong; the worker stays up
        outcomes.append((0, {"error": f"the score files could not be checked ({type(exc).__name__}: {exc})"}))
    return score_files_check_finish(submission_id=submission_id, outcomes=outcomes).status


def _database_url() -> str:
    """The URL of the database this process uses (the child connects to the same one, tests' included)."""
    db = connection.settings_dict
    if "sqlite" in db["ENGINE"]:
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"


def _check_in_child(row: ScoreFile) -> dict:
    """Validate one stored score file in ``worker/scorefile_check.py``: a copy of it on local disk, read by a
    fresh interpreter under the limits. Returns its outcome (``{"error": ...}`` when it failed or was stopped)."""
    name = Path(row.file.name or "").name
    memory = int(settings.HPBENCH_SCORE_CHECK_MEMORY_BYTES)
    seconds = int(settings.HPBENCH_SCORE_CHECK_SECONDS)
    with tempfile.TemporaryDirectory(prefix="hpbench-scorefile-") as folder:
        local = Path(folder) / "file"
        with row.file.open("rb") as source, local.open("wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "hpbench.settings"}
        command = [sys.executable, "-m", "worker.scorefile_check", "--memory", str(memory), "--cpu", str(seconds),
                   str(local), name]
        root = Path(__file__).resolve().parent.parent
        try:
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            return {"error": f"file {name!r}: checking it took longer than {seconds} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    if done.returncode < 0:  # killed: past the CPU limit (SIGXCPU/SIGKILL) or out of memory
        return {"error": f"file {name!r}: checking it was stopped past the limits ({seconds} s of CPU, "
                         f"{memory} bytes of memory)"}
    tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
    if "MemoryError" in done.stderr:
        return {"error": f"file {name!r}: needs more than {memory} bytes of memory to read"}
    return {"error": f"file {name!r}: could not be checked (exit status {done.returncode}: {tail[0][:200]})"}


def score_from_file_execute(*, score_id: int) -> str:
    """Claim the score row (queued -> running) and compute it from the model's relevance file; returns the
    final status. A row already claimed, finished or cancelled is left alone."""
    owner = claims.worker_identity()
    if not claims.job_claim(model=ModelScore, pk=score_id, owner=owner, reset={"progress": 0.0}):
        return ModelScore.objects.filter(pk=score_id).values_list("status", flat=True).first() or "missing"
    status = "finished"
    beat = claims.Heartbeat(model=ModelScore, pk=score_id, owner=owner).start()
    try:
        started = time.perf_counter()
        score = ModelScore.objects.select_related("model", "benchmark").get(pk=score_id)
        row = ScoreFile.objects.filter(model=score.model, benchmark=score.benchmark, kind="relevance").first()
        if row is None:
            raise ScoreFileError(f"model {score.model.name} has no score file for {score.benchmark.label}")
        stored = Path(row.file.name or "")  # a saved row's file always has a name
        with row.file.open("rb") as handle:
            parsed = read_relevance(handle, name=stored.name, suffix=stored.suffix.lower())
        if parsed.benchmark.pk != score.benchmark_id:
            raise ScoreFileError(f"the stored file scores {parsed.benchmark.label}, not {score.benchmark.label}")
        set1, set2 = relevance_set_scores(parsed)
        timings = {"seconds": round(time.perf_counter() - started, 3), "pairs": len(set1), "rows": row.rows,
                   "source": "score file"}
        if not ModelScore.objects.filter(pk=score_id, status=ModelScore.Status.RUNNING).exists():
            return "cancelled"
        model_score_store(score_id=score_id, set1=set1, set2=set2, timings=timings)
    except Exception as exc:  # the row says what went wrong; the worker stays up
        model_score_fail(score_id=score_id, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        status = "failed"
    finally:
        beat.stop()
        _refresh_submission(model_id=ModelScore.objects.filter(pk=score_id).values_list("model_id", flat=True).first())
    return status


def rankings_execute(*, run_id: int) -> str:
    """Claim the retrieval run (queued -> running), compute Recall@K from the model's ranking files of its split
    and store the rankings as the run's top-K results; returns the final status."""
    Status = RetrievalRun.Status
    owner = claims.worker_identity()
    if not claims.job_claim(model=RetrievalRun, pk=run_id, owner=owner):
        return RetrievalRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "missing"
    run = RetrievalRun.objects.select_related("model", "dataset").get(pk=run_id)
    beat = claims.Heartbeat(model=RetrievalRun, pk=run_id, owner=owner).start()
    try:
        started = time.perf_counter()
        parsed: dict[str, Rankings] = {}
        for row in ScoreFile.objects.filter(model=run.model, dataset=run.dataset, split=run.split, kind="ranking"):
            with row.file.open("rb") as handle:
                parsed[row.metric] = read_rankings(handle, name=Path(row.file.name or "").name)
        if not parsed:
            raise ScoreFileError(f"model {run.model.name} has no ranking file for {run.dataset.name}/{run.split}")
        proto = next(iter(parsed.values())).protocol
        if (proto.dataset.pk, proto.split) != (run.dataset_id, run.split):
            raise ScoreFileError(f"the stored file ranks {proto.dataset.name}/{proto.split}, not this run's split")
        metrics_out = rankings_recall(proto, parsed)
        results_path = _write_rankings(run, proto, parsed.get("recall") or parsed["recall_subset"])
        timings = {"total_s": round(time.perf_counter() - started, 3)}
        done = RetrievalRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
            status=Status.FINISHED, progress=1.0, metrics=metrics_out, timings=timings,
            results_path=str(results_path), finished_at=timezone.now(),
            log=Concat(F("log"), Value(f"Recall@K from the authors' ranking file(s): {', '.join(sorted(parsed))}\n")),
        )
        status = Status.FINISHED if done else Status.CANCELLED
    except Exception as exc:
        RetrievalRun.objects.filter(pk=run_id).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now(),
            log=Concat(F("log"), Value(f"ERROR {exc}\n{traceback.format_exc()}")),
        )
        status = Status.FAILED
    finally:
        beat.stop()
    _refresh_submission(model_id=run.model_id)
    return status


def _write_rankings(run: RetrievalRun, proto, rankings: Rankings) -> str:
    """The submitted lists as the run's top-K file (image ids; no scores, so NaN), as a model run writes it."""
    ids = dict(Image.objects.filter(dataset=proto.dataset).values_list("name", "id"))
    keys = list(rankings.rankings)
    image_ids = np.full((len(keys), RANKING_DEPTH), -1, dtype=np.int64)
    for row, key in enumerate(keys):
        names = rankings.rankings[key]
        image_ids[row, : len(names)] = [ids[n] for n in names]
    return media.save_bytes(f"runs/run-{run.pk}.npz", topk_bytes(
        query_ids=[proto.queries[k].pk for k in keys],
        image_ids=image_ids,
        scores=np.full(image_ids.shape, np.nan, dtype=np.float32),
    ))


def _refresh_submission(*, model_id: int | None) -> None:
    submission = Submission.objects.filter(model_id=model_id).first() if model_id else None
    if submission is not None:
        submission_refresh(submission=submission)
