"""Per-model embedding cache for workers (imports torch: never import it from the web process).

Every image and every composed query is encoded once per model and checkpoint: embeddings are
stored as ``.npy`` files under ``MEDIA_ROOT/embeddings/<model id>-<checkpoint fingerprint>/``,
one store per dataset and kind, and later runs (retrieval, preference scoring) read them back.
A checkpoint that changes gets a new fingerprint, hence a fresh cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.conf import settings

from hpbench.catalog.models import Image, ModelEntry
from models_zoo import load_model
from models_zoo.base import CIRModel
from models_zoo.checkpoints import checkpoint_fingerprint
from models_zoo.encoding import cached_model, encode_image_batches, encode_query_batches, resolve_device

Progress = Callable[[int, int], None]
_STORE_LOCK = threading.Lock()


@dataclass(frozen=True)
class QuerySpec:
    """A composed query to encode: a stable key, the reference image and the modification text."""

    key: str
    reference_id: int
    text: str

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha1(f"{self.reference_id}\x00{self.text}".encode()).hexdigest()[:16]
        return f"{self.key}|{digest}"


def device() -> torch.device:
    return resolve_device(settings.HPBENCH_DEVICE or "auto")


def _fingerprint(entry: ModelEntry) -> str:
    location = entry.checkpoint_location
    return checkpoint_fingerprint(location) if location else "no-checkpoint"


def model_for_entry(entry: ModelEntry) -> CIRModel:
    """The entry's model, loaded once per worker process (keyed by model, variant, device, checkpoint and config).

    A submitted model's config is checked again and its ``base_model`` expanded to the registered paths
    (``hpbench.catalog.family_config.config_for_loading``): a researcher's config never names a file here.
    """
    from hpbench.catalog.family_config import config_for_loading

    location = entry.checkpoint_location or None
    target = device()
    config = config_for_loading(entry=entry)
    key = (entry.pk, entry.variant, str(target), _fingerprint(entry), json.dumps(config, sort_keys=True))
    return cached_model(
        key,
        lambda: load_model(entry.family, location, variant=entry.variant, config=config, device=str(target)),
    )


class EmbeddingStore:
    """Embeddings keyed by strings, kept as ``<name>.npy`` + ``<name>.keys.json`` (written atomically)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.array_path = folder / f"{name}.npy"
        self.keys_path = folder / f"{name}.keys.json"

    def load(self) -> tuple[dict[str, int], np.ndarray | None]:
        if not self.array_path.exists() or not self.keys_path.exists():
            return {}, None
        keys = json.loads(self.keys_path.read_text())
        array = np.load(self.array_path, allow_pickle=False)
        if len(keys) != array.shape[0]:  # a torn pair of files: start again rather than mix rows
            return {}, None
        return {key: row for row, key in enumerate(keys)}, array

    def save(self, index: dict[str, int], array: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = [None] * len(index)
        for key, row in index.items():
            keys[row] = key
        tmp_array = self.array_path.with_suffix(".tmp.npy")
        tmp_keys = self.keys_path.with_suffix(".tmp")
        np.save(tmp_array, array, allow_pickle=False)
        tmp_keys.write_text(json.dumps(keys))
        os.replace(tmp_array, self.array_path)
        os.replace(tmp_keys, self.keys_path)

    def get_or_compute(
        self, keys: Sequence[str], compute: Callable[[list[int]], torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        """Rows for ``keys`` in order; ``compute(positions)`` encodes the missing ones. Returns (rows, computed)."""
        with _STORE_LOCK:
            index, array = self.load()
        missing = [pos for pos, key in enumerate(keys) if key not in index]
        if missing:
            # Duplicate keys in one call are encoded once.
            first_of: dict[str, int] = {}
            for pos in missing:
                first_of.setdefault(keys[pos], pos)
            fresh = compute(list(first_of.values())).numpy().astype(np.float32, copy=False)
            with _STORE_LOCK:
                index, array = self.load()  # another thread may have written meanwhile
                start = 0 if array is None else array.shape[0]
                new_keys = [key for key in first_of if key not in index]
                order = {key: row for row, key in enumerate(first_of)}
                rows = [order[key] for key in new_keys]
                if new_keys:
                    addition = fresh[rows]
                    array = addition if array is None else np.concatenate([array, addition])
                    for offset, key in enumerate(new_keys):
                        index[key] = start + offset
                    self.save(index, array)
        assert array is not None
        return torch.from_numpy(array[[index[key] for key in keys]]), len(missing)


def _store(entry: ModelEntry, dataset_id: int, kind: str) -> EmbeddingStore:
    model_folder = f"model-{entry.pk}-{_fingerprint(entry)}"
    folder = Path(settings.MEDIA_ROOT) / "embeddings" / model_folder / f"dataset-{dataset_id}"
    return EmbeddingStore(folder, kind)


def _image_paths(image_ids: Sequence[int]) -> dict[int, Path]:
    rows = Image.objects.filter(pk__in=set(image_ids)).select_related("dataset").only(
        "id", "file_path", "dataset__image_root"
    )
    paths = {row.pk: Path(row.dataset.image_root) / row.file_path for row in rows}
    unknown = set(image_ids) - set(paths)
    if unknown:
        raise ValueError(f"unknown image ids: {sorted(unknown)[:10]}")
    return paths


def _dataset_of(image_ids: Sequence[int]) -> int:
    datasets = set(Image.objects.filter(pk__in=set(image_ids)).values_list("dataset_id", flat=True))
    if len(datasets) != 1:
        raise ValueError(f"images must come from one dataset, got datasets {sorted(datasets)}")
    return datasets.pop()


def image_embeddings(
    entry: ModelEntry, image_ids: Sequence[int], *, progress: Progress | None = None, stats: dict | None = None
) -> torch.Tensor:
    """Embeddings of images of one dataset, in the given order; ``stats["images_encoded"]`` counts new ones."""
    if not image_ids:
        raise ValueError("no images to encode")
    paths = _image_paths(image_ids)
    store = _store(entry, _dataset_of(image_ids), "images")

    def compute(positions: list[int]) -> torch.Tensor:
        files = [str(paths[image_ids[p]]) for p in positions]
        return encode_image_batches(
            model_for_entry(entry), files, batch_size=settings.HPBENCH_BATCH_SIZE, device=device(),
            progress=progress,
        )

    rows, computed = store.get_or_compute([f"image-{i}" for i in image_ids], compute)
    if stats is not None:
        stats["images_encoded"] = stats.get("images_encoded", 0) + computed
    return rows


def query_embeddings(
    entry: ModelEntry, specs: Sequence[QuerySpec], *, progress: Progress | None = None, stats: dict | None = None
) -> torch.Tensor:
    """Embeddings of composed queries (reference images of one dataset), in order;
    ``stats["queries_encoded"]`` counts new ones."""
    if not specs:
        raise ValueError("no queries to encode")
    reference_ids = [spec.reference_id for spec in specs]
    paths = _image_paths(reference_ids)
    store = _store(entry, _dataset_of(reference_ids), "queries")

    def compute(positions: list[int]) -> torch.Tensor:
        return encode_query_batches(
            model_for_entry(entry),
            [str(paths[specs[p].reference_id]) for p in positions],
            [specs[p].text for p in positions],
            batch_size=settings.HPBENCH_BATCH_SIZE, device=device(), progress=progress,
        )

    rows, computed = store.get_or_compute([spec.cache_key for spec in specs], compute)
    if stats is not None:
        stats["queries_encoded"] = stats.get("queries_encoded", 0) + computed
    return rows
