"""Loading zero-shot CLIP: ``checkpoint`` is a Hugging Face CLIP folder (config.json, weights,
tokenizer files), read offline. Config: ``pad_ratio`` (default 1.25; ``None`` disables target padding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models_zoo.clip_common import load_clip_folder
from models_zoo.clip_zeroshot.model import ClipZeroShot
from models_zoo.errors import CheckpointError


def load(checkpoint: Path | None, *, variant: str = "sum", config: dict[str, Any] | None = None) -> ClipZeroShot:
    """A :class:`ClipZeroShot` from the CLIP folder ``checkpoint``. Raises CheckpointError if unusable."""
    config = config or {}
    if checkpoint is None:
        raise CheckpointError("clip_zeroshot needs a checkpoint: a Hugging Face CLIP folder")
    clip, tokenizer = load_clip_folder(checkpoint)
    return ClipZeroShot(clip, tokenizer, variant=variant or "sum", pad_ratio=config.get("pad_ratio", 1.25))
