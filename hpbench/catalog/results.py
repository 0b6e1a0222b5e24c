"""Compact storage of a retrieval run's top-K results (numpy only, safe to import anywhere).

One ``.npz`` file per run holds ``query_ids`` (Q,), ``image_ids`` (Q, K) and ``scores`` (Q, K),
rows in the order of ``query_ids`` and columns best first. Workers store it in the media storage with
:func:`topk_bytes` (``runs/run-<id>.npz``, the name the run's ``results_path`` keeps) and readers use
:func:`read_topk_stored`; :func:`write_topk` writes a local file, to a temporary name then renamed, so a
reader never sees half a file.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


def topk_bytes(*, query_ids, image_ids, scores) -> bytes:
    """A run's results as the bytes of an ``.npz`` file; shapes are checked and a ``ValueError`` names the
    mismatch."""
    query_ids = np.asarray(query_ids, dtype=np.int64)
    image_ids = np.asarray(image_ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    if image_ids.ndim != 2 or image_ids.shape != scores.shape or image_ids.shape[0] != query_ids.shape[0]:
        raise ValueError(
            f"top-K shapes disagree: query_ids {query_ids.shape}, image_ids {image_ids.shape}, "
            f"scores {scores.shape}"
        )
    buffer = io.BytesIO()
    np.savez(buffer, query_ids=query_ids, image_ids=image_ids, scores=scores)
    return buffer.getvalue()


def write_topk(path: Path | str, *, query_ids, image_ids, scores) -> Path:
    """Write a run's results to a local file atomically (see :func:`topk_bytes`)."""
    data = topk_bytes(query_ids=query_ids, image_ids=image_ids, scores=scores)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def read_topk(source: Path | str | IO[bytes]) -> TopK:
    """Read a file (a local path or an open binary file) written by :func:`topk_bytes` or :func:`write_topk`
    (no pickles are allowed)."""
    with np.load(source, allow_pickle=False) as data:
        return TopK(query_ids=data["query_ids"], image_ids=data["image_ids"], scores=data["scores"])


def read_topk_stored(name: str) -> TopK:
    """Read a run's results by its ``results_path``: a media storage name (or, for runs stored before media
    went through the storage API, an absolute path). Raises ``hpbench.media.MediaError`` when it is missing."""
    from hpbench import media  # Django's storage; imported here so that this module stays numpy-only

    return read_topk(io.BytesIO(media.read_bytes(name)))
