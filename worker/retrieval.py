"""Executing a retrieval run: encode (once, cached), rank, store top-K, compute Recall@K by the official protocol."""

from __future__ import annotations

import json
import logging
import time
import traceback

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from hpbench import media
from hpbench.catalog.models import Dataset, Image, Query, RetrievalRun
from hpbench.catalog.protocol import retrieval_groups
from hpbench.catalog.query_text import query_text
from hpbench.catalog.results import topk_bytes
from hpbench.metrics import retrieval as metrics
from worker import claims
from worker.embeddings import QuerySpec, image_embeddings, query_embeddings

logger = logging.getLogger(__name__)
Status = RetrievalRun.Status


class RunCancelled(Exception):
    pass


def query_spec(query: Query, dataset: Dataset) -> QuerySpec:
    """What the model encodes for ``query``: its reference image and its text (``hpbench.catalog.query_text``)."""
    text = query_text(protocol=dataset.protocol, captions=query.captions)
    return QuerySpec(key=f"query-{query.pk}", reference_id=query.reference_id, text=text)


class _Reporter:
    """Writes progress and log lines to the run row, and notices cancellation."""

    def __init__(self, run_id: int, owner: str) -> None:
        self.run_id = run_id
        self.owner = owner
        self.last = 0.0

    def log(self, message: str) -> None:
        logger.info("run %s: %s", self.run_id, message)
        stamp = timezone.now().strftime("%H:%M:%S")
        RetrievalRun.objects.filter(pk=self.run_id).update(log=Concat(F("log"), Value(f"{stamp} {message}\n")))

    def progress(self, fraction: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        # Stops when cancelled, failed by the reaper, or taken over by another worker.
        if not RetrievalRun.objects.filter(pk=self.run_id, status=Status.RUNNING, claimed_by=self.owner).update(
            progress=round(fraction, 4)
        ):
            raise RunCancelled()

    def phase(self, start: float, end: float):
        return lambda done, total: self.progress(start + (end - start) * done / max(total, 1))


def retrieval_run_execute(*, run_id: int, owner: str | None = None) -> str:
    """Run one retrieval job end to end; idempotent (a finished, failed or cancelled run is left alone).

    ``owner`` (default: this process and task, :func:`worker.claims.worker_identity`) claims the run, queued or
    left running by a lost worker, and keeps its heartbeat while it runs; returns the run's final status.
    """
    owner = owner or claims.worker_identity()
    if not claims.job_claim(model=RetrievalRun, pk=run_id, owner=owner,
                            reset={"progress": 0.0, "error": "", "log": ""}):
        status = RetrievalRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        logger.info("run %s not claimed (status %s)", run_id, status)
        return status or "missing"
    reporter = _Reporter(run_id, owner)
    started = time.perf_counter()
    with claims.heartbeat(model=RetrievalRun, pk=run_id, owner=owner):
        try:
            run = RetrievalRun.objects.select_related("model", "dataset").get(pk=run_id)
            metrics_out, timings, results_path = _execute(run, reporter)
        except RunCancelled:
            status = RetrievalRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
            reporter.log(f"stopped by {owner}: the run is {status} or taken over")
            return status or "missing"
        except SoftTimeLimitExceeded:
            _fail(run_id, owner, "time limit exceeded", "")
            return Status.FAILED
        except Exception as exc:  # a readable error on the row, the traceback in the log
            _fail(run_id, owner, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return Status.FAILED
    timings["total_s"] = round(time.perf_counter() - started, 3)
    done = RetrievalRun.objects.filter(pk=run_id, status=Status.RUNNING, claimed_by=owner).update(
        status=Status.FINISHED, progress=1.0, metrics=metrics_out, timings=timings,
        results_path=str(results_path), finished_at=timezone.now(),
    )
    if done:
        reporter.log(f"finished in {timings['total_s']} s: {json.dumps(metrics_out)[:500]}")
    return Status.FINISHED if done else Status.CANCELLED


def _fail(run_id: int, owner: str, error: str, trace: str) -> None:
    logger.error("run %s failed: %s", run_id, error)
    RetrievalRun.objects.filter(pk=run_id, status=Status.RUNNING, claimed_by=owner).update(
        status=Status.FAILED, error=error, finished_at=timezone.now(),
        log=Concat(F("log"), Value(f"ERROR {error}\n{trace}")),
    )


def _execute(run: RetrievalRun, reporter: _Reporter) -> tuple[dict, dict, str]:
    dataset, entry, split = run.dataset, run.model, run.split
    groups = retrieval_groups(dataset=dataset, split=split)
    queries = [query for _, members in groups.values() for query in members]
    protocol = dataset.protocol
    # An image in two galleries (FashionIQ lists some under two categories) is encoded once.
    all_images = list(dict.fromkeys(image_id for gallery, _ in groups.values() for image_id in gallery))
    reporter.log(
        f"{entry.name} on {dataset.name}/{split}: {len(queries)} queries, {len(all_images)} gallery images, "
        f"protocol {protocol}"
    )
    stats: dict[str, int] = {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    image_emb = image_embeddings(entry, all_images, progress=reporter.phase(0.0, 0.6), stats=stats).numpy()
    timings["encode_images_s"] = round(time.perf_counter() - t0, 3)
    reporter.progress(0.6, force=True)
    t0 = time.perf_counter()
    query_emb = query_embeddings(
        entry, [query_spec(q, dataset) for q in queries], progress=reporter.phase(0.6, 0.9), stats=stats
    ).numpy()
    timings["encode_queries_s"] = round(time.perf_counter() - t0, 3)
    reporter.log(
        f"embeddings: {stats.get('images_encoded', 0)} images and {stats.get('queries_encoded', 0)} queries "
        "newly encoded, the rest from the cache"
    )
    reporter.progress(0.9, force=True)

    t0 = time.perf_counter()
    image_row = {image_id: row for row, image_id in enumerate(all_images)}
    query_row = {query.pk: row for row, query in enumerate(queries)}
    k = run.topk
    out_query_ids: list[int] = []
    out_image_ids: list[np.ndarray] = []
    out_scores: list[np.ndarray] = []
    ranks_per_group: dict[str, np.ndarray] = {}
    metrics_out: dict = {"protocol": protocol, "split": split, "queries": len(queries)}
    skipped: dict[str, int] = {}  # per group: queries whose target is not in their gallery
    for name, (gallery, members) in groups.items():
        g_rows = np.array([image_row[i] for i in gallery], dtype=np.int64)
        gallery_ids = np.array(gallery, dtype=np.int64)
        g_emb = image_emb[g_rows]
        q_emb = query_emb[[query_row[q.pk] for q in members]]
        local = {image_id: idx for idx, image_id in enumerate(gallery)}
        exclude = None
        if protocol == "cirr":
            exclude = np.array([local.get(q.reference_id, -1) for q in members], dtype=np.int64)
        kk = min(k, len(gallery) - (1 if exclude is not None and (exclude >= 0).any() else 0))
        top_idx, top_scores = metrics.topk_from_embeddings(q_emb, g_emb, kk, exclude=exclude)
        out_query_ids.extend(q.pk for q in members)
        out_image_ids.append(_pad(gallery_ids[top_idx], k, -1))
        out_scores.append(_pad(top_scores.astype(np.float32), k, np.nan))
        target_of = {i: q.target_id for i, q in enumerate(members) if q.target_id is not None and q.target_id in local}
        outside = sum(q.target_id is not None and q.target_id not in local for q in members)
        if outside:
            skipped[name] = outside
        if not target_of:
            continue
        with_target = list(target_of)
        target = np.array([local[target_id] for target_id in target_of.values()], dtype=np.int64)
        if protocol == "cirr":
            assert exclude is not None  # set above for CIRR
            name_to_local = _names_to_local(gallery)
            member_idx = [_member_indices(members[i], name_to_local) for i in with_target]
            metrics_out.update(metrics.cirr_recall(
                q_emb[with_target], g_emb, reference=exclude[with_target], target=target, members=member_idx,
            ))
        else:
            ranks_per_group[name] = metrics.target_ranks(q_emb[with_target], g_emb, target)
    if ranks_per_group:
        metrics_out.update(metrics.fashioniq_recall(ranks_per_group))
    metrics_out["skipped_queries"] = sum(skipped.values())
    if skipped:
        metrics_out["skipped_by_group"] = skipped
        reporter.log(
            f"{sum(skipped.values())} queries left out of Recall@K, their target not in their gallery: "
            + ", ".join(f"{group} {n}" for group, n in sorted(skipped.items()))
        )
    timings["rank_s"] = round(time.perf_counter() - t0, 3)

    results_path = media.save_bytes(f"runs/run-{run.pk}.npz", topk_bytes(
        query_ids=out_query_ids, image_ids=np.concatenate(out_image_ids), scores=np.concatenate(out_scores),
    ))
    if protocol == "cirr" and split == "test1":
        metrics_out["submission_files"] = _write_cirr_submission(run, queries, image_emb, query_emb, image_row,
                                                                 query_row, groups["all"][0], "runs")
    return metrics_out, timings, results_path


def _pad(array: np.ndarray, k: int, fill) -> np.ndarray:
    if array.shape[1] == k:
        return array
    padded = np.full((array.shape[0], k), fill, dtype=array.dtype)
    padded[:, : array.shape[1]] = array
    return padded


def _member_indices(query: Query, name_to_local: dict[str, int]) -> list[int]:
    """CIRR subset members (stored as names) as gallery indices; members outside the gallery are dropped."""
    return [name_to_local[name] for name in query.subset_members if name in name_to_local]


def _names_to_local(gallery: list[int]) -> dict[str, int]:
    local = {image_id: idx for idx, image_id in enumerate(gallery)}
    return {name: local[image_id] for image_id, name in Image.objects.filter(pk__in=gallery).values_list("id", "name")}


def _write_cirr_submission(run, queries, image_emb, query_emb, image_row, query_row, gallery, folder) -> list[str]:
    """The two official test1 submission files (recall top-50 and recall_subset top-3) stored in the media
    storage folder ``folder`` beside the results; returns their storage names."""
    names = dict(Image.objects.filter(pk__in=gallery).values_list("id", "name"))
    local = {image_id: idx for idx, image_id in enumerate(gallery)}
    g_emb = image_emb[[image_row[i] for i in gallery]]
    q_emb = query_emb[[query_row[q.pk] for q in queries]]
    reference = np.array([local.get(q.reference_id, -1) for q in queries], dtype=np.int64)
    name_to_local = _names_to_local(gallery)
    members = [_member_indices(q, name_to_local) for q in queries]
    top, subset_top = metrics.cirr_rankings(
        q_emb, g_emb, reference=reference, members=members, k=min(50, len(gallery) - 1)
    )
    gallery_names = [names[i] for i in gallery]
    recall, subset = metrics.cirr_submission(
        [q.pairid for q in queries],
        [[gallery_names[i] for i in row if i >= 0] for row in top],
        [[gallery_names[i] for i in row if i >= 0] for row in subset_top],
    )
    stored = []
    for kind, payload in (("recall", recall), ("recall_subset", subset)):
        stored.append(media.save_bytes(f"{folder}/run-{run.pk}-cirr-test1-{kind}.json", json.dumps(payload).encode()))
    return stored
