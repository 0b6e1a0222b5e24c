"""hpbench's model zoo: composed-image-retrieval model families behind one interface.

Plain PyTorch, no Django. Importing this package is cheap (torch and transformers are imported
only when a model is loaded), so web code may import it for ``FAMILIES`` and ``CheckpointError``.

Typical use, from a notebook or a worker::

    from models_zoo import load_model
    from models_zoo.encoding import encode_image_batches, encode_query_batches

    model = load_model("clip_zeroshot", "/models/clip-vit-b32", variant="sum", device="cuda")
    gallery = encode_image_batches(model, pil_images, batch_size=64, device="cuda")
    queries = encode_query_batches(model, reference_images, texts, batch_size=64, device="cuda")
    scores = model.score(queries, gallery)  # (Q, N), higher is more relevant
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models_zoo.errors import CheckpointError

if TYPE_CHECKING:
    from models_zoo.base import CIRModel

__all__ = ["FAMILIES", "VARIANTS", "CheckpointError", "load_model"]

#: family name -> module (imported on first use) that defines ``load(checkpoint, *, variant, config, device)``.
FAMILIES: dict[str, str] = {
    "clip_zeroshot": "models_zoo.clip_zeroshot",
    "clip4cir": "models_zoo.clip4cir",
    "blip2_cir": "models_zoo.blip2_cir",
    "demo": "models_zoo.demo",
}

#: The file a ``blip2_cir`` checkpoint without ViT weights (QuRe's clip_L) is completed from, looked for beside it:
#: this stem with ``.pth`` or ``.safetensors`` (LAVIS builds the ViT from ``clip_vit_L.pth``).
CLIP_L_VIT_STEM = "clip_vit_L"

#: family name -> accepted variants; the first is the default used for ``variant=""``.
VARIANTS: dict[str, tuple[str, ...]] = {
    "clip_zeroshot": ("sum", "mean", "image", "text"),
    "clip4cir": ("combiner",),
    "blip2_cir": ("qure", "sprc"),
    "demo": ("combiner", "image", "text", "sum"),
}


def load_model(
    family: str,
    checkpoint: str | Path | None,
    *,
    variant: str = "",
    config: dict[str, Any] | None = None,
    device: str = "cpu",
) -> CIRModel:
    """Build a model of ``family`` from ``checkpoint`` and return it in eval mode on ``device``.

    ``checkpoint`` is a file or folder whose layout each family documents (``None`` only where the
    family can build from ``config`` alone). ``variant`` picks a family's variant (``""`` = default).
    ``config`` holds family options (for example ``{"clip_folder": ...}`` for clip4cir).
    ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Raises ``ValueError`` for an unknown family or variant and ``CheckpointError`` (a ``ValueError``)
    for a checkpoint that is missing, unsafe, corrupt or does not match the architecture.
    """
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; known families: {', '.join(sorted(FAMILIES))}")
    variants = VARIANTS[family]
    chosen = variant or variants[0]
    if chosen not in variants:
        raise ValueError(f"Unknown variant {variant!r} for family {family!r}; known variants: {', '.join(variants)}")
    module = importlib.import_module(FAMILIES[family])
    from models_zoo.encoding import resolve_device

    model = module.load(Path(checkpoint) if checkpoint is not None else None, variant=chosen, config=dict(config or {}))
    return model.to(resolve_device(device)).eval()
