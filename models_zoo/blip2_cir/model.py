"""BLIP-2 Q-Former composed-image retrieval on transformers' ``Blip2ForImageTextRetrieval`` modules.

Gallery image (QuRe/SPRC ``extract_target_features``): the learned query tokens alone run through the
Q-Former, cross-attending to the image's ViT features (after ``ln_vision`` = HF ``post_layernorm``);
each query position is projected with ``vision_proj`` and normalised -> ``(B, T, D)``.

Query, variant ``qure`` (QuRe ``extract_query_features_*``): query tokens and the text tokens run
together through the Q-Former (the query attends to the text in self-attention and to the reference
image's ViT features in cross-attention); the query-position outputs are projected with ``text_proj``,
mean-pooled and normalised -> ``(B, D)``.

Query, variant ``sprc`` (SPRC ``inference``): the same first pass, then a second text pass where the
first pass's query outputs replace the query tokens as a prompt prefix, with no image (SPRC's modified
Q-Former then sends every position through the text feed-forward, which HF's layer does when
``query_length=0``); the output at the first text position ([CLS], index ``T``) is projected with
``text_proj`` and normalised.

Vision: transformers' EVA-style ``vision_model`` (its ``post_layernorm`` = ``ln_vision``), or for the ``clip_L``
backbone ``clip_vit.ClipLVision``. With ``clip_L`` the precision is the released code's: on CUDA the ViT runs
in fp16 (see ``clip_vit``) and the Q-Former and projections in fp32 with autocast off, whatever autocast the
caller (the worker's bf16) has on; on CPU everything is fp32.

Texts go through LAVIS's ``blip_caption`` eval processor and the BERT tokenizer (at most 32 tokens).
Padding is to the longest text rather than to 32: padded keys are masked, so outputs are the same.
Score: max over the query tokens of the dot product (QuRe and SPRC).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from models_zoo.base import CIRModel
from models_zoo.blip2_cir.clip_vit import ClipLVision
from models_zoo.preprocess import ImagePreprocessor
from models_zoo.text import blip_caption_text

VARIANTS = ("qure", "sprc")


class Blip2Cir(CIRModel):
    family = "blip2_cir"

    def __init__(
        self,
        retrieval: Any,
        tokenizer: Any,
        *,
        variant: str = "qure",
        max_text_length: int = 32,
        pad_ratio: float | None = 1.25,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown blip2_cir variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.retrieval = retrieval  # transformers Blip2ForImageTextRetrieval
        self.tokenizer = tokenizer
        self.variant = variant
        self.max_text_length = max_text_length
        self.image_preprocessor = ImagePreprocessor(size=retrieval.config.vision_config.image_size, pad_ratio=pad_ratio)

    @property
    def num_query_tokens(self) -> int:
        return self.retrieval.query_tokens.shape[1]

    @property
    def released_precision(self) -> bool:
        """True for the clip_L backbone: fp16 ViT and fp32 Q-Former on CUDA, as QuRe's released code runs it."""
        return isinstance(self.retrieval.vision_model, ClipLVision)

    def _qformer_precision(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.released_precision and device.type == "cuda":
            return torch.autocast("cuda", enabled=False)
        return contextlib.nullcontext()

    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Frozen ViT features after ``ln_vision``: ``(B, patches + 1, vision hidden)``."""
        vision = self.retrieval.vision_model
        if isinstance(vision, ClipLVision):
            return vision(pixel_values)
        return vision(pixel_values=pixel_values).last_hidden_state

    def _ones(self, features: torch.Tensor) -> torch.Tensor:
        return torch.ones(features.shape[:-1], dtype=torch.long, device=features.device)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        image = self.vision_features(pixel_values)
        with self._qformer_precision(image.device):
            return self._encode_image_features(image)

    def _encode_image_features(self, image: torch.Tensor) -> torch.Tensor:
        query_tokens = self.retrieval.query_tokens.expand(image.shape[0], -1, -1)
        output = self.retrieval.qformer(
            query_embeds=query_tokens, encoder_hidden_states=image, encoder_attention_mask=self._ones(image)
        ).last_hidden_state
        projection = self.retrieval.vision_projection
        return F.normalize(projection(output.to(projection.weight.dtype)), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """BERT token ids and attention mask of the processed ``texts`` on the model's device."""
        batch = self.tokenizer(
            [blip_caption_text(t) for t in texts],
            padding="longest",
            truncation=True,
            max_length=self.max_text_length,
            return_tensors="pt",
        )
        return {
            "input_ids": batch["input_ids"].to(self.device),
            "attention_mask": batch["attention_mask"].to(self.device),
        }

    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        if len(texts) != pixel_values.shape[0]:
            raise ValueError(f"{pixel_values.shape[0]} reference images but {len(texts)} texts")
        image = self.vision_features(pixel_values)
        with self._qformer_precision(image.device):
            return self._encode_query_features(image, texts)

    def _encode_query_features(self, image: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenize(texts)
        count = self.num_query_tokens
        query_tokens = self.retrieval.query_tokens.expand(image.shape[0], -1, -1)
        attention_mask = torch.cat([self._ones(query_tokens), tokens["attention_mask"]], dim=1)
        fused = self.retrieval.qformer(
            query_embeds=self.retrieval.embeddings(input_ids=tokens["input_ids"], query_embeds=query_tokens),
            query_length=count,
            attention_mask=attention_mask,
            encoder_hidden_states=image,
            encoder_attention_mask=self._ones(image),
        ).last_hidden_state
        projection = self.retrieval.text_projection
        if self.variant == "qure":
            pooled = projection(fused[:, :count, :].to(projection.weight.dtype)).mean(dim=1)
            return F.normalize(pooled, dim=-1)
        second = self.retrieval.qformer(
            query_embeds=self.retrieval.embeddings(input_ids=tokens["input_ids"], query_embeds=fused[:, :count, :]),
            query_length=0,
            attention_mask=attention_mask,
        ).last_hidden_state
        return F.normalize(projection(second[:, count, :].to(projection.weight.dtype)), dim=-1)
