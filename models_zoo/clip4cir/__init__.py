"""CLIP4Cir: CLIP features fused by the Combiner network (Baldrati et al.).

The released checkpoints load on OpenAI CLIP built from its own state dict (``official.load_official``,
``OpenAIClip4Cir``); a Hugging Face CLIP folder remains accepted for ViT backbones (``Clip4Cir``).
"""

from models_zoo.clip4cir.loading import load, save_clip4cir
from models_zoo.clip4cir.model import Clip4Cir, Combiner, OpenAIClip4Cir
from models_zoo.clip4cir.official import load_official

__all__ = ["Clip4Cir", "Combiner", "OpenAIClip4Cir", "load", "load_official", "save_clip4cir"]
