"""Zero-shot CLIP baselines (image only, text only, element-wise sum, mean of unit vectors)."""

from models_zoo.clip_zeroshot.loading import load
from models_zoo.clip_zeroshot.model import ClipZeroShot

__all__ = ["ClipZeroShot", "load"]
