"""CLIP4Cir's Combiner over (possibly fine-tuned) CLIP features.

``Combiner`` keeps CLIP4Cir's attribute names, so the official ``Combiner`` state dict loads as is.
Query = ``Combiner(image_features, text_features)`` on CLIP's raw projected features; gallery =
normalise(image_features), as CLIP4Cir's validation normalises the index features. Score: cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.base import CIRModel
from models_zoo.clip_common import ClipFeatures
from models_zoo.preprocess import ImagePreprocessor


class Combiner(nn.Module):
    """CLIP4Cir's Combiner: projections with ReLU, concatenation, an MLP and a learned sigmoid gate λ.

    ``output = normalise(output_layer(h) + λ·text + (1 - λ)·image)`` with ``h`` the combiner MLP's hidden
    state and ``λ = dynamic_scalar(concat(text_proj, image_proj))``.
    """

    def __init__(self, clip_feature_dim: int, projection_dim: int, hidden_dim: int):
        super().__init__()
        self.text_projection_layer = nn.Linear(clip_feature_dim, projection_dim)
        self.image_projection_layer = nn.Linear(clip_feature_dim, projection_dim)
        self.dropout1 = nn.Dropout(0.5)
        self.dropout2 = nn.Dropout(0.5)
        self.combiner_layer = nn.Linear(projection_dim * 2, hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, clip_feature_dim)
        self.dropout3 = nn.Dropout(0.5)
        self.dynamic_scalar = nn.Sequential(
            nn.Linear(projection_dim * 2, hidden_dim),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(hidden_dim, 1),
            nn.Sigmoid(),
        )
        self.logit_scale = 100

    def combine_features(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Normalised combined features ``(B, clip_feature_dim)``."""
        text_projected = self.dropout1(F.relu(self.text_projection_layer(text_features)))
        image_projected = self.dropout2(F.relu(self.image_projection_layer(image_features)))
        raw_combined = torch.cat((text_projected, image_projected), -1)
        combined = self.dropout3(F.relu(self.combiner_layer(raw_combined)))
        gate = self.dynamic_scalar(raw_combined)
        output = self.output_layer(combined) + gate * text_features + (1 - gate) * image_features
        return F.normalize(output, dim=-1)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self.combine_features(image_features, text_features)


class Clip4Cir(ClipFeatures, CIRModel):
    family = "clip4cir"
    variant = "combiner"

    def __init__(self, clip: Any, tokenizer: Any, combiner: Combiner, *, pad_ratio: float | None = 1.25):
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.combiner = combiner
        self.image_preprocessor = ImagePreprocessor(size=clip.config.vision_config.image_size, pad_ratio=pad_ratio)
        self.max_text_length = min(77, clip.config.text_config.max_position_embeddings)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_features(pixel_values), dim=-1)

    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        image = self.image_features(pixel_values)
        text = self.text_features(texts)
        # The combiner's weights may be fp32 while autocast gives bf16 features: compute it in its dtype.
        dtype = self.combiner.output_layer.weight.dtype
        return self.combiner.combine_features(image.to(dtype), text.to(dtype))


class OpenAIClip4Cir(CIRModel):
    """CLIP4Cir on OpenAI's CLIP (any ResNet or ViT, see ``openai_clip``), scored as the official ``validate.py``.

    Query = ``Combiner.combine_features(encode_image(reference), encode_text(tokens))`` (unit norm); gallery =
    ``normalise(encode_image(image))``; score = dot product. Runs in fp32 as the official evaluation
    (``clip_model.float()``), with autocast switched off, so GPU results match the released code's.
    """

    family = "clip4cir"
    variant = "combiner"

    def __init__(self, clip: Any, tokenizer: Any, combiner: Combiner, *, pad_ratio: float | None = 1.25):
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.combiner = combiner
        self.image_preprocessor = ImagePreprocessor(size=clip.arch.image_resolution, pad_ratio=pad_ratio)
        self.context_length = clip.arch.context_length

    def _fp32(self, device: torch.device) -> Any:
        return torch.autocast(device_type=device.type, enabled=False)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with self._fp32(pixel_values.device):
            return F.normalize(self.clip.encode_image(pixel_values.float()), dim=-1)

    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer.encode(list(texts), context_length=self.context_length).to(pixel_values.device)
        # The causal mask lets trailing padding go: encode up to the last end-of-text token (the largest id).
        tokens = tokens[:, : int(tokens.argmax(dim=-1).max()) + 1]
        with self._fp32(pixel_values.device):
            image = self.clip.encode_image(pixel_values.float())
            text = self.clip.encode_text(tokens)
            return self.combiner.combine_features(image, text)
