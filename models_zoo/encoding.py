"""The worker path: batched, device-aware encoding of galleries and composed queries, and a
per-process model cache.

Images are decoded and preprocessed inside a ``torch.utils.data.DataLoader`` (``num_workers``
processes, pinned memory on CUDA) while the model encodes the previous batch; encoding runs under
``torch.inference_mode()`` with bf16 (or fp16 where bf16 is unsupported) autocast on CUDA. Results
come back as CPU float32 tensors, in input order.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image as PILImage
from torch.utils.data import DataLoader, Dataset

from models_zoo.base import CIRModel
from models_zoo.preprocess import ImagePreprocessor

ImageLike = PILImage.Image | str | Path
Progress = Callable[[int, int], None]
T = TypeVar("T")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available else ``cpu``; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given.

    Raises ValueError for an unknown spec or a CUDA device that is not available.
    """
    if isinstance(spec, torch.device):
        device = spec
    elif spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(spec)
        except RuntimeError as exc:
            raise ValueError(f"Unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Device {spec!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"Device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


def autocast_context(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (fp16 where bf16 is unsupported); a no-op on CPU or when disabled."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


class _ImageDataset(Dataset):
    def __init__(self, images: Sequence[ImageLike], preprocessor: ImagePreprocessor):
        self.images = images
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.preprocessor.uint8(self.images[index])


class _QueryDataset(Dataset):
    def __init__(
        self,
        references: Sequence[ImageLike],
        texts: Sequence[str],
        preprocessor: ImagePreprocessor,
    ):
        self.references = references
        self.texts = texts
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.references)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        return self.preprocessor.uint8(self.references[index]), self.texts[index]


def _collate_queries(batch: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
    return torch.stack([pixels for pixels, _ in batch]), [text for _, text in batch]


def _loader(dataset: Dataset, *, batch_size: int, num_workers: int, device: torch.device, collate=None) -> DataLoader:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        collate_fn=collate,
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )


def _prepare(model: CIRModel, device: str | torch.device) -> torch.device:
    target = resolve_device(device)
    if model.device != target:
        model.to(target)
    model.eval()
    return target


def _encode(
    model: CIRModel,
    loader: DataLoader,
    *,
    target: torch.device,
    amp: bool,
    total: int,
    progress: Progress | None,
    encode: Callable[[torch.Tensor, Any], torch.Tensor],
) -> torch.Tensor:
    """Run ``encode(pixels, texts_or_None)`` over the loader's batches; CPU float32 rows in input order."""
    chunks: list[torch.Tensor] = []
    done = 0
    with torch.inference_mode(), autocast_context(target, amp):
        for batch in loader:
            pixels, texts = batch if isinstance(batch, tuple) else (batch, None)
            # uint8 crosses to the device (4x less to copy) and is normalised there, one batch at a time.
            pixels = model.image_preprocessor.normalise(pixels.to(target, non_blocking=True))
            chunks.append(encode(pixels, texts).float().to("cpu"))
            done += pixels.shape[0]
            if progress is not None:
                progress(done, total)
    return torch.cat(chunks)


def encode_image_batches(
    model: CIRModel,
    images: Sequence[ImageLike],
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    amp: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Gallery embeddings of ``images`` (PIL images or file paths), in order, as CPU float32.

    Returns ``(N, D)`` or ``(N, T, D)`` as the family's ``encode_images``. ``progress(done, total)``
    is called after each batch. Moves ``model`` to ``device`` and sets eval mode.
    """
    target = _prepare(model, device)
    loader = _loader(
        _ImageDataset(images, model.image_preprocessor), batch_size=batch_size, num_workers=num_workers, device=target
    )
    if not images:
        raise ValueError("encode_image_batches needs at least one image")
    return _encode(
        model,
        loader,
        target=target,
        amp=amp,
        total=len(images),
        progress=progress,
        encode=lambda pixels, _: model.encode_images(pixels),
    )


def encode_query_batches(
    model: CIRModel,
    references: Sequence[ImageLike],
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    amp: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Composed-query embeddings ``(Q, D)`` (CPU float32, in order) for reference images and texts.

    ``references`` and ``texts`` must have the same length (ValueError otherwise).
    """
    if len(references) != len(texts):
        raise ValueError(f"{len(references)} reference images but {len(texts)} texts")
    target = _prepare(model, device)
    loader = _loader(
        _QueryDataset(references, list(texts), model.image_preprocessor),
        batch_size=batch_size,
        num_workers=num_workers,
        device=target,
        collate=_collate_queries,
    )
    if not references:
        raise ValueError("encode_query_batches needs at least one query")
    return _encode(
        model, loader, target=target, amp=amp, total=len(references), progress=progress, encode=model.encode_queries
    )


# ---- per-process model cache -------------------------------------------------------------------------

_CACHE: OrderedDict[Hashable, Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
MODEL_CACHE_SIZE = 2


def model_cache_key(model_id: Hashable, checkpoint: str | Path | None, *, variant: str = "", device: str = "") -> tuple:
    """``(model_id, variant, device, fingerprint)`` where the fingerprint changes when the checkpoint
    file or folder changes (see ``checkpoints.checkpoint_fingerprint``)."""
    from models_zoo.checkpoints import checkpoint_fingerprint

    fingerprint = checkpoint_fingerprint(checkpoint) if checkpoint is not None else ""
    return (model_id, variant, device, fingerprint)


def cached_model(key: Hashable, loader: Callable[[], T], *, max_entries: int | None = None) -> T:
    """Return the object cached under ``key`` in this process, calling ``loader()`` on a miss.

    Least-recently-used entries beyond ``max_entries`` (default ``MODEL_CACHE_SIZE``) are dropped (and
    the CUDA cache emptied). Thread-safe; a loader that raises caches nothing.
    """
    limit = MODEL_CACHE_SIZE if max_entries is None else max_entries
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        value = loader()
        _CACHE[key] = value
        evicted = False
        while len(_CACHE) > max(limit, 1):
            _CACHE.popitem(last=False)
            evicted = True
        if evicted and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return value


def clear_model_cache() -> None:
    """Forget every cached model of this process."""
    with _CACHE_LOCK:
        _CACHE.clear()
