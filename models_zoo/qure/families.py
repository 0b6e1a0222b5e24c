"""Which families the trainer can start and write checkpoints for, in the folder format ``register_model``
accepts.

- ``demo``: a fresh model (vocabulary built from the training texts) or one loaded from ``init_checkpoint``;
  written with :func:`models_zoo.demo.save_demo_model` (``config.json`` + ``model.safetensors``), the
  folder ``load_model("demo", DIR)`` and ``register_model NAME --family demo --checkpoint DIR`` read.

Other families need a checkpoint writer in their package before they can be trained here; asking for one
raises ValueError naming the families that can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from models_zoo.base import CIRModel

TRAINABLE_FAMILIES: tuple[str, ...] = ("demo",)


def _check(family: str) -> None:
    if family not in TRAINABLE_FAMILIES:
        raise ValueError(
            f"training cannot write {family!r} checkpoints yet; trainable families: {', '.join(TRAINABLE_FAMILIES)}"
        )


def model_for_training(
    family: str,
    *,
    texts: Sequence[str],
    init_checkpoint: str | Path | None = None,
    config: dict[str, Any] | None = None,
) -> CIRModel:
    """A model of ``family`` to train: from ``init_checkpoint`` when given, else freshly initialised (call
    ``torch.manual_seed`` first for a reproducible start). ``config`` holds family options (for ``demo``:
    :class:`models_zoo.demo.DemoConfig` fields; the vocabulary defaults to the training texts' words)."""
    _check(family)
    from models_zoo import load_model

    if init_checkpoint is not None:
        return load_model(family, init_checkpoint, device="cpu")
    from models_zoo.demo import build_vocab

    options = dict(config or {})
    options.setdefault("vocab", build_vocab(texts))
    return load_model(family, None, config=options, device="cpu")


def checkpoint_writer(family: str) -> Callable[[CIRModel, Path], None]:
    """``write(model, folder)`` for ``family``'s checkpoint folder format."""
    _check(family)
    from models_zoo.demo import DemoCIR, save_demo_model

    def write(model: CIRModel, folder: Path) -> None:
        save_demo_model(cast(DemoCIR, model), folder)  # a trainable family's models are DemoCIR

    return write
