"""Helpers shared by the CLIP-based families (transformers 4.x and 5.x)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from models_zoo.errors import CheckpointError


def as_vector(output: Any) -> torch.Tensor:
    """The projected feature from ``get_image_features``/``get_text_features``: a tensor in
    transformers 4.x, an output object with ``.pooler_output`` in 5.x."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"Unexpected CLIP feature output {type(output).__name__}")
    return pooled


def load_clip_folder(folder: Path) -> tuple[Any, Any]:
    """``(CLIPModel, tokenizer)`` from a Hugging Face CLIP folder, offline only.

    Raises CheckpointError naming the folder when it is missing or not a CLIP folder.
    """
    from transformers import CLIPModel, CLIPTokenizer, CLIPTokenizerFast

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"CLIP folder {folder}: not found or not a folder")
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"CLIP folder {folder}: no config.json (expected a Hugging Face CLIP folder)")
    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True, use_safetensors=None)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"CLIP folder {folder}: cannot load the model: {exc}") from exc
    try:
        tokenizer = CLIPTokenizerFast.from_pretrained(folder, local_files_only=True)
    except Exception:  # no tokenizer.json: build the slow tokenizer from vocab.json/merges.txt
        try:
            tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
        except Exception as exc:
            raise CheckpointError(f"CLIP folder {folder}: cannot load the tokenizer: {exc}") from exc
    return model, tokenizer


def tokenize(tokenizer: Any, texts: Sequence[str], *, max_length: int, device: torch.device) -> dict:
    """Pad/truncate ``texts`` to at most ``max_length`` tokens; tensors on ``device``."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}


class ClipFeatures:
    """CLIP's raw projected features for a ``CIRModel`` holding ``clip``, ``tokenizer`` and ``max_text_length``."""

    clip: Any
    tokenizer: Any
    max_text_length: int
    device: torch.device  # CIRModel's

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLIP's raw projected image features ``(B, P)``."""
        return as_vector(self.clip.get_image_features(pixel_values=pixel_values))

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP's raw projected text features ``(B, P)``."""
        inputs = tokenize(self.tokenizer, texts, max_length=self.max_text_length, device=self.device)
        return as_vector(self.clip.get_text_features(**inputs))
