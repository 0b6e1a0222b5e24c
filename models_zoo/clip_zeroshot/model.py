"""Zero-shot CLIP as a composed-image-retrieval model.

Query variants (features are CLIP's projected image/text features):
- ``image``: normalise(image); ``text``: normalise(text);
- ``sum``: normalise(image + text) on the raw features (CLIP4Cir's element-wise-sum baseline);
- ``mean``: normalise(normalise(image) + normalise(text)).
Gallery: normalise(image). Score: cosine (dot product of unit vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from models_zoo.base import CIRModel
from models_zoo.clip_common import ClipFeatures
from models_zoo.preprocess import ImagePreprocessor

VARIANTS = ("sum", "mean", "image", "text")


class ClipZeroShot(ClipFeatures, CIRModel):
    family = "clip_zeroshot"

    def __init__(self, clip: Any, tokenizer: Any, *, variant: str = "sum", pad_ratio: float | None = 1.25):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown clip_zeroshot variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.clip = clip
        self.tokenizer = tokenizer
        self.variant = variant
        self.image_preprocessor = ImagePreprocessor(size=clip.config.vision_config.image_size, pad_ratio=pad_ratio)
        self.max_text_length = min(77, clip.config.text_config.max_position_embeddings)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_features(pixel_values), dim=-1)

    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        if self.variant == "text":
            return F.normalize(self.text_features(texts), dim=-1)
        image = self.image_features(pixel_values)
        if self.variant == "image":
            return F.normalize(image, dim=-1)
        text = self.text_features(texts)
        if self.variant == "sum":
            return F.normalize(image + text, dim=-1)
        return F.normalize(F.normalize(image, dim=-1) + F.normalize(text, dim=-1), dim=-1)
