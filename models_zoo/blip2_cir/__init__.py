"""BLIP-2 Q-Former composed retrieval as in QuRe (variant ``qure``) and SPRC (variant ``sprc``)."""

from models_zoo.blip2_cir.loading import load
from models_zoo.blip2_cir.model import Blip2Cir

__all__ = ["Blip2Cir", "load"]
