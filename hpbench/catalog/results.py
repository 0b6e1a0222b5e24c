"""Compact storage of a retrieval run's top-K results (numpy only, safe to import anywhere).

One ``.npz`` file per run holds ``query_ids`` (Q,), ``image_ids`` (Q, K) and ``scores`` (Q, K),
rows in the order of ``query_ids`` and columns best first. Files are written to a temporary name
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TopK:
    query_ids: np.ndarray  # int64 (Q,)
    image_ids: np.ndarray  # int64 (Q, K), best first
    scores: np.ndarray  # float32 (Q, K)

    def for_query(self, query_id: int) -> tuple[list[int], list[float]]:
        """The ranked image ids and scores of one query; ``KeyError`` when the run has no such query."""
        rows = np.flatnonzero(self.query_ids == query_id)
        if rows.size == 0:
            raise KeyError(query_id)
        row = int(rows[0])
        return self.image_ids[row].tolist(), self.scores[row].tolist()

    def as_dict(self, k: int | None = None) -> dict[int, list[int]]:
        """``{query_id: [image ids, best first]}``, cut to ``k`` when given."""
        cut = self.image_ids if k is None else self.image_ids[:, :k]
        return {int(q): row.tolist() for q, row in zip(self.query_ids, cut, strict=True)}


def write_topk(path: Path | str, *, query_ids, image_ids, scores) -> Path:
    """Write a run's results atomically; shapes are checked and a ``ValueError`` names the mismatch."""
    query_ids = np.asarray(query_ids, dtype=np.int64)
    image_ids = np.asarray(image_ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    if image_ids.ndim != 2 or image_ids.shape != scores.shape or image_ids.shape[0] != query_ids.shape[0]:
        raise ValueError(
            f"top-K shapes disagree: query_ids {query_ids.shape}, image_ids {image_ids.shape}, "
            f"scores {scores.shape}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, query_ids=query_ids, image_ids=image_ids, scores=scores)
    os.replace(tmp, path)
    return path


def read_topk(path: Path | str) -> TopK:
    """Read a file written by :func:`write_topk` (no pickles are allowed)."""
    with np.load(path, allow_pickle=False) as data:
        return TopK(query_ids=data["query_ids"], image_ids=data["image_ids"], scores=data["scores"])
