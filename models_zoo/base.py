"""The one interface every model family implements.

A family turns images and composed queries (reference image + modification text) into embeddings
and scores queries against gallery embeddings. Everything here is plain PyTorch: no Django.

Shapes:
- ``preprocess(images)`` -> ``(B, 3, H, W)`` float32 pixels (the family's ``image_preprocessor``
  applied to each image; workers call that per image inside DataLoader workers).
- ``encode_images(pixels)`` -> ``(B, D)`` or, for families with several vectors per image
  (BLIP-2's query tokens), ``(B, T, D)``.
- ``encode_queries(pixels, texts)`` -> ``(B, D)``.
- ``score(queries, images)`` -> ``(Q, N)`` relevance scores (higher is more relevant).

``encode_images`` / ``encode_queries`` do not disable gradients themselves, so a trainer can call
them; inference callers wrap them in ``torch.inference_mode()`` (``models_zoo.encoding`` does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from PIL import Image as PILImage
from torch import nn

from models_zoo.preprocess import ImagePreprocessor


class CIRModel(nn.Module, ABC):
    """A composed-image-retrieval model behind hpbench's interface."""

    family: str = ""
    variant: str = ""
    #: Turns one PIL image (or image path) into a ``(3, H, W)`` tensor; set by each family.
    image_preprocessor: ImagePreprocessor = ImagePreprocessor()

    def preprocess(self, images: Sequence[PILImage.Image]) -> torch.Tensor:
        """Turn PIL images into the pixel tensor ``(B, 3, H, W)`` this family expects."""
        return self.image_preprocessor.batch(images)

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

    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter (CPU for a parameterless model)."""
        for param in self.parameters():
            return param.device
        return torch.device("cpu")
