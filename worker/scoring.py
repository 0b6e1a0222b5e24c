"""Scoring a model on a preference benchmark (worker only: imports torch through the embedding cache).

Every distinct image and query of the benchmark is encoded once per model (``worker.embeddings`` keeps
them on disk, so a second benchmark or a retrieval run reuses them); a set's score is the mean of the
model's relevance scores of its images to the query (QuRe Eq. 8). The figures (Eq. 9 preference ratio,
agreement, bootstrap intervals) are computed by :func:`hpbench.leaderboard.services.model_score_store`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services import (
    model_score_fail,
    model_score_progress,
    model_score_store,
)
from hpbench.metrics import preference
from worker import claims
from worker.embeddings import QuerySpec, image_embeddings, model_for_entry, query_embeddings

Progress = Callable[[int, int], None]


class ScoringCancelled(Exception):
    """The score row left the running state (cancelled) while the worker was busy."""


@dataclass(frozen=True)
class PairInput:
    reference_id: int
    text: str
    set1: Sequence[int]
    set2: Sequence[int]
    query_id: int | None = None

    def spec(self) -> QuerySpec:
        # A pair linked to a catalogue query shares that query's cache entry when the text is the same.
        key = f"query-{self.query_id}" if self.query_id else "pair"
        return QuerySpec(key=key, reference_id=self.reference_id, text=self.text)


def pair_set_scores(
    pairs: Sequence[PairInput],
    *,
    encode_images: Callable[[list[int]], torch.Tensor],
    encode_queries: Callable[[list[QuerySpec]], torch.Tensor],
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    chunk: int = 256,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair set scores ``(set1, set2)``: the mean over each set's images of ``score(query, image)``.

    ``encode_images`` is called once with every distinct image id, ``encode_queries`` once with every
    distinct query; ``score(queries (q, D), images (n, D) | (n, T, D)) -> (q, n)`` then runs per chunk of
    pairs against only the images that chunk needs.
    """
    if not pairs:
        raise ValueError("no pairs to score")
    image_ids = list(dict.fromkeys(i for p in pairs for i in (*p.set1, *p.set2)))
    image_row = {image_id: row for row, image_id in enumerate(image_ids)}
    specs = list(dict.fromkeys(p.spec() for p in pairs))
    spec_row = {spec: row for row, spec in enumerate(specs)}
    images = encode_images(image_ids)
    queries = encode_queries(specs)
    relevance1: list[np.ndarray] = []
    relevance2: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(pairs), chunk):
            block = pairs[start : start + chunk]
            q_rows = torch.tensor([spec_row[p.spec()] for p in block])
            needed = list(dict.fromkeys(image_row[i] for p in block for i in (*p.set1, *p.set2)))
            local = {row: col for col, row in enumerate(needed)}
            relevance = score(queries[q_rows], images[torch.tensor(needed)]).double().numpy()  # (b, n)
            for offset, pair in enumerate(block):
                relevance1.append(relevance[offset, [local[image_row[i]] for i in pair.set1]])
                relevance2.append(relevance[offset, [local[image_row[i]] for i in pair.set2]])
            if progress is not None:
                progress(min(start + chunk, len(pairs)), len(pairs))
    return preference.set_scores(relevance1), preference.set_scores(relevance2)


def score_model_execute(*, score_id: int) -> str:
    """Claim the score row (queued -> running), compute and store the figures; returns the final status.

    A row already claimed, finished or cancelled is left alone (the task is idempotent).
    """
    owner = claims.worker_identity()
    if not claims.job_claim(model=ModelScore, pk=score_id, owner=owner, reset={"progress": 0.0}):
        return ModelScore.objects.filter(pk=score_id).values_list("status", flat=True).first() or "missing"
    beat = claims.Heartbeat(model=ModelScore, pk=score_id, owner=owner).start()
    try:
        score = ModelScore.objects.select_related("model", "benchmark").get(pk=score_id)
        entry = score.model
        started = time.perf_counter()
        pairs = [
            PairInput(reference_id=r, text=t, set1=s1, set2=s2, query_id=q)
            for r, t, s1, s2, q in score.benchmark.pairs.order_by("position").values_list(
                "reference_id", "text", "set1_image_ids", "set2_image_ids", "query_id"
            )
        ]
        stats: dict[str, int] = {}

        def phase(lo: float, hi: float) -> Progress:
            def report(done: int, total: int) -> None:
                if not model_score_progress(score_id=score_id, progress=lo + (hi - lo) * done / max(total, 1)):
                    raise ScoringCancelled
                if not beat.alive:  # failed by the reaper, or taken over by another worker
                    raise ScoringCancelled
            return report

        model = model_for_entry(entry)
        set1, set2 = pair_set_scores(
            pairs,
            encode_images=lambda ids: image_embeddings(entry, ids, progress=phase(0.0, 0.6), stats=stats),
            encode_queries=lambda specs: query_embeddings(entry, specs, progress=phase(0.6, 0.85), stats=stats),
            score=lambda q, i: model.score(q.to(model.device), i.to(model.device)).float().cpu(),
            progress=phase(0.85, 0.95),
        )
        timings = {
            "seconds": round(time.perf_counter() - started, 3),
            "pairs": len(pairs),
            "images_encoded": stats.get("images_encoded", 0),
            "queries_encoded": stats.get("queries_encoded", 0),
        }
        if not claims.job_is_mine(model=ModelScore, pk=score_id, owner=owner):
            raise ScoringCancelled
        model_score_store(score_id=score_id, set1=set1, set2=set2, timings=timings)
    except ScoringCancelled:
        return "cancelled"
    except Exception as exc:  # the row must say what went wrong; the worker stays up
        model_score_fail(score_id=score_id, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        return "failed"
    finally:
        beat.stop()
        _refresh_submission(score_id)
    return "finished"


def _refresh_submission(score_id: int) -> None:
    from hpbench.leaderboard.models import Submission
    from hpbench.leaderboard.services import submission_refresh

    submission = Submission.objects.filter(model__preference_scores__pk=score_id).first()
    if submission is not None:
        submission_refresh(submission=submission)
