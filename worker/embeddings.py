"""Per-model embedding cache for workers (imports torch: never import it from the web process).

Every image and every composed query is encoded once per model and checkpoint: embeddings are
stored in the media storage (``hpbench.media``) as ``embeddings/model-<id>-<checkpoint fingerprint>/
dataset-<id>/<kind>.npz``, one store per dataset and kind, and later runs (retrieval, preference scoring), on
this worker or another, read them back (through the worker's local cache, ``worker.media_cache``).
A checkpoint that changes gets a new fingerprint, hence a fresh cache.

Checkpoints: an uploaded one is copied from the storage with its folder (loaders read companion files beside
it); a server-side path registered by staff, and datasets' images, are read in place and must be mounted at the
same path on every worker (README, "What the machines share").
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from django.conf import settings

from hpbench import media
from hpbench.catalog.models import Dataset, Image, ModelEntry
from models_zoo import load_model
from models_zoo.base import CIRModel
from models_zoo.checkpoints import CheckpointError, checkpoint_fingerprint
from models_zoo.encoding import cached_model, encode_image_batches, encode_query_batches, resolve_device
from models_zoo.registry import folder_files
from worker.media_cache import local_file, local_folder

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


def checkpoint_local(entry: ModelEntry) -> str:
    """A local path of the entry's checkpoint for a loader; '' when it has none.

    An upload is copied from the media storage (with its own folder's companion files; uploads made before
    each had a folder are copied alone). A server-side path must exist on this worker: ``CheckpointError``
    names it and the host otherwise.
    """
    if entry.checkpoint_file:
        name = entry.checkpoint_file.name or ""  # a set file (truthy) always has a name
        folder = media.parent(name)
        if PurePosixPath(folder).name == entry.name:  # the upload's own folder (submission_create)
            if folder_files(entry.family):  # an unpacked folder archive: the loader takes the folder
                return str(local_folder(folder))
            return str(local_folder(folder) / PurePosixPath(name).name)
        return str(local_file(name))
    if entry.checkpoint_path and not Path(entry.checkpoint_path).exists():
        raise CheckpointError(
            f"Checkpoint {entry.checkpoint_path}: not found on worker host {socket.gethostname()}; a server-side "
            "checkpoint path must be mounted at the same path on every worker"
        )
    return entry.checkpoint_path


def _fingerprint(entry: ModelEntry, location: str | None = None) -> str:
    location = checkpoint_local(entry) if location is None else location
    return checkpoint_fingerprint(location) if location else "no-checkpoint"


def model_for_entry(entry: ModelEntry) -> CIRModel:
    """The entry's model, loaded once per worker process (keyed by model, variant, device, checkpoint and config).

    A submitted model's config is checked again and its ``base_model`` expanded to the registered paths
    (``hpbench.catalog.family_config.config_for_loading``): a researcher's config never names a file here.
    """
    from hpbench.catalog.family_config import config_for_loading

    location = checkpoint_local(entry) or None
    target = device()
    config = config_for_loading(entry=entry)
    key = (entry.pk, entry.variant, str(target), _fingerprint(entry, location or ""),
           json.dumps(config, sort_keys=True))
    return cached_model(
        key,
        lambda: load_model(entry.family, location, variant=entry.variant, config=config, device=str(target)),
    )


class EmbeddingStore:
    """Embeddings keyed by strings, kept in the media storage as one ``<folder>/<name>.npz`` (``array`` and
    ``keys``), replaced whole on each write so that keys and rows always match.

    Two workers adding to the same store at once may each drop the other's new rows (the last write wins);
    those rows are encoded again by the next run that needs them, never mixed up.
    """

    def __init__(self, folder: str, name: str) -> None:
        self.folder = folder
        self.name = f"{folder}/{name}.npz"

    def load(self) -> tuple[dict[str, int], np.ndarray | None]:
        try:
            path = local_file(self.name)
        except media.MediaError:
            return {}, None
        with np.load(path, allow_pickle=False) as data:
            keys, array = data["keys"].tolist(), data["array"]
        if len(keys) != array.shape[0]:
            return {}, None
        return {key: row for row, key in enumerate(keys)}, array

    def save(self, index: dict[str, int], array: np.ndarray) -> None:
        keys = [""] * len(index)
        for key, row in index.items():
            keys[row] = key
        buffer = io.BytesIO()
        np.savez(buffer, array=array, keys=np.array(keys, dtype=str))
        media.save_bytes(self.name, buffer.getvalue())

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
    return EmbeddingStore(f"{embeddings_folder(entry)}/dataset-{dataset_id}", kind)


def embeddings_folder(entry: ModelEntry) -> str:
    """The storage folder of the entry's embedding stores for its current checkpoint."""
    return f"embeddings/model-{entry.pk}-{_fingerprint(entry)}"


def _image_paths(image_ids: Sequence[int]) -> dict[int, Path]:
    rows = Image.objects.filter(pk__in=set(image_ids)).select_related("dataset").only(
        "id", "file_path", "dataset__image_root"
    )
    paths = {row.pk: Path(row.dataset.image_root) / row.file_path for row in rows}
    unknown = set(image_ids) - set(paths)
    if unknown:
        raise ValueError(f"unknown image ids: {sorted(unknown)[:10]}")
    return paths


def dataset_images_check(*, dataset_id: int, files: Sequence[str | Path]) -> None:
    """Raise ``FileNotFoundError`` naming the dataset, its image root, this host and the first missing files
    when some of ``files`` are not readable here: datasets' images are read in place, from a folder every
    worker mounts at the path the dataset was imported from."""
    missing = [str(f) for f in files if not os.path.isfile(f)]
    if not missing:
        return
    dataset = Dataset.objects.filter(pk=dataset_id).only("name", "image_root").first()
    name, root = (dataset.name, dataset.image_root) if dataset else (f"#{dataset_id}", "?")
    raise FileNotFoundError(
        f"dataset {name}: {len(missing)} of {len(files)} images not found on worker host {socket.gethostname()} "
        f"(first: {', '.join(missing[:3])}); mount the image root {root} at the same path on every worker"
    )


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
    dataset_id = _dataset_of(image_ids)
    store = _store(entry, dataset_id, "images")

    def compute(positions: list[int]) -> torch.Tensor:
        files = [str(paths[image_ids[p]]) for p in positions]
        dataset_images_check(dataset_id=dataset_id, files=files)
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
    dataset_id = _dataset_of(reference_ids)
    store = _store(entry, dataset_id, "queries")

    def compute(positions: list[int]) -> torch.Tensor:
        files = [str(paths[specs[p].reference_id]) for p in positions]
        dataset_images_check(dataset_id=dataset_id, files=files)
        return encode_query_batches(
            model_for_entry(entry),
            files,
            [specs[p].text for p in positions],
            batch_size=settings.HPBENCH_BATCH_SIZE, device=device(), progress=progress,
        )

    rows, computed = store.get_or_compute([spec.cache_key for spec in specs], compute)
    if stats is not None:
        stats["queries_encoded"] = stats.get("queries_encoded", 0) + computed
    return rows
