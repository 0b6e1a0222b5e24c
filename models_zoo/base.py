"""The one interface every model family implements.

A family turns images and composed queries (reference image + modification text) into embeddings
and scores queries against gallery embeddings. Everything here is plain PyTorch: no Django.

Shapes:
- ``encode_images(pixels)`` -> ``(B, D)`` or, for families with several vectors per image
  (BLIP-2's query tokens), ``(B, T, D)``.
- ``encode_queries(pixels, texts)`` -> ``(B, D)``.
- ``score(queries, images)`` -> ``(Q, N)`` relevance scores (higher is more relevant).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from PIL import Image as PILImage
from torch import nn


class CIRModel(nn.Module, ABC):
    """A composed-image-retrieval model behind hpbench's interface."""

    family: str = ""

    @abstractmethod
    def preprocess(self, images: Sequence[PILImage.Image]) -> torch.Tensor:
        """Turn PIL images into the pixel tensor ``(B, 3, H, W)`` this family expects."""

    @abstractmethod
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Gallery embeddings, normalised as the family's score expects."""

    @abstractmethod
    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Composed-query embeddings for reference images and their modification texts."""

    def score(self, queries: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Relevance of every query to every image, ``(Q, N)``. Default: dot product (cosine on unit vectors)."""
        if images.dim() == 3:  # several vectors per image: the best-matching one counts
            return torch.einsum("qd,ntd->qnt", queries, images).amax(dim=-1)
        return queries @ images.T
