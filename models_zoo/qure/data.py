"""Training and validation data for the trainer, as plain lists and tensors (no Django).

Images are identified by an integer id: the position in a :class:`PixelSource`. Queries refer to images by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image as PILImage


class PixelSource(Protocol):
    """Image id -> preprocessed pixels."""

    def __len__(self) -> int: ...

    def pixels(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """``(len(ids), 3, H, W)`` float32 pixels of the given image ids, in order."""
        ...


class TensorPixels:
    """Pixels held in one ``(N, 3, H, W)`` tensor (small datasets, tests)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        if tensor.dim() != 4:
            raise ValueError(f"expected an (N, 3, H, W) tensor, got shape {tuple(tensor.shape)}")
        self.tensor = tensor

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def pixels(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        return self.tensor[torch.as_tensor(ids, dtype=torch.long)]


class FilePixels:
    """Image files preprocessed on demand by ``preprocess`` (one PIL image -> ``(3, H, W)``).

    With ``cache=True`` every preprocessed image is kept in memory after its first use (fine for the demo
    and small sets; pass ``cache=False`` for FashionIQ-sized training sets).
    """

    def __init__(
        self, paths: Sequence[str | Path], preprocess: Callable[[PILImage.Image], torch.Tensor], *, cache: bool = True
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.preprocess = preprocess
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def _one(self, i: int) -> torch.Tensor:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        path = self.paths[i]
        try:
            with PILImage.open(path) as image:
                pixels = self.preprocess(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read image {i} at {path}: {exc}") from exc
        if self.cache is not None:
            self.cache[i] = pixels
        return pixels

    def pixels(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        return torch.stack([self._one(int(i)) for i in torch.as_tensor(ids).tolist()])


@dataclass
class QuerySet:
    """Composed queries: reference and target image ids, the query texts, and each query's category.

    For training, a query's corpus (what it is ranked against when hard negatives are defined, and what
    warm-up negatives are drawn from) is the set of target images of the queries of its category, as QuRe
    does for FashionIQ. For validation, ``galleries`` maps each category to its gallery image ids.
    """

    images: PixelSource
    reference: list[int]
    target: list[int]
    texts: list[str]
    categories: list[str]
    galleries: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.reference)
        for name in ("target", "texts", "categories"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{n} reference images but {len(getattr(self, name))} {name}")
        if n == 0:
            raise ValueError("the query set is empty")
        size = len(self.images)
        for name in ("reference", "target"):
            bad = [i for i in getattr(self, name) if not 0 <= i < size]
            if bad:
                raise ValueError(f"{name} image id {bad[0]} is not in 0..{size - 1}")

    def __len__(self) -> int:
        return len(self.reference)

    def category_corpora(self) -> dict[str, torch.Tensor]:
        """``category -> sorted unique target image ids`` (the training corpus of that category)."""
        corpora: dict[str, set[int]] = {}
        for category, target in zip(self.categories, self.target, strict=True):
            corpora.setdefault(category, set()).add(target)
        return {c: torch.tensor(sorted(ids), dtype=torch.long) for c, ids in sorted(corpora.items())}
