"""CLIP4Cir: CLIP features fused by the Combiner network (Baldrati et al.)."""

from models_zoo.clip4cir.loading import load, save_clip4cir
from models_zoo.clip4cir.model import Clip4Cir, Combiner

__all__ = ["Clip4Cir", "Combiner", "load", "save_clip4cir"]
