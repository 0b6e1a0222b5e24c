"""CLIP4Cir's released checkpoints on OpenAI CLIP (every ResNet and ViT), with no Hugging Face folder.

CLIP4Cir (ABaldrati/CLIP4Cir) saves with ``torch.save({"epoch": N, <class name>: module.state_dict()})``:

- the Combiner: ``{"epoch", "Combiner"}`` (``combiner_train.py``);
- the fine-tuned CLIP: ``{"epoch", "CLIP"}`` (``clip_fine_tune.py``), an OpenAI-layout CLIP state dict from
  which the architecture is read (``openai_clip.infer_architecture``);
- or one dict holding both keys.

Where CLIP was not fine-tuned, the official code runs OpenAI's pretrained model: give its state dict (a flat
``{name: tensor}`` ``.pt`` or ``.safetensors`` file in the same OpenAI layout, e.g.
``torch.jit.load(path).state_dict()`` saved once with ``torch.save``) as the CLIP file. The text
tokenizer needs OpenAI's BPE vocabulary ``bpe_simple_vocab_16e6.txt.gz`` (see ``bpe``). Files are read with
``torch.load(weights_only=True)`` or safetensors only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models_zoo.checkpoints import (
    DEFAULT_MAX_BYTES,
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIXES,
    load_checkpoint_file,
    load_state_dict_checked,
)
from models_zoo.clip4cir.bpe import BPE_FILE_NAME, ClipBpeTokenizer
from models_zoo.clip4cir.keymap import is_openai_layout
from models_zoo.clip4cir.model import Combiner, OpenAIClip4Cir
from models_zoo.clip4cir.openai_clip import build_openai_clip
from models_zoo.errors import CheckpointError

StateDict = dict[str, torch.Tensor]


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


#: Keys that only a Combiner state dict has (CLIP4Cir's ``combiner.py``).
_COMBINER_KEYS = ("text_projection_layer.weight", "combiner_layer.weight")


def _without_data_parallel(state: StateDict) -> StateDict:
    """``state`` with the ``module.`` prefix ``nn.DataParallel`` / DDP adds to every key removed."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _is_combiner(state: StateDict) -> bool:
    return all(k in state for k in _COMBINER_KEYS)


def read_official_file(
    path: Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> tuple[StateDict | None, StateDict | None]:
    """``(Combiner state dict or None, CLIP state dict or None)`` from one file.

    Accepts ``{"Combiner": ...}``, ``{"CLIP": ...}``, both in one dict, a flat OpenAI CLIP or Combiner state dict,
    or a safetensors file of ``combiner.*``/``clip.*`` tensors; keys saved from ``nn.DataParallel`` (``module.``
    prefix) are read as the plain ones. Raises CheckpointError when the file holds neither (a TorchScript archive
    gets the way to convert it).
    """
    content = load_checkpoint_file(path, max_bytes=max_bytes)
    if isinstance(content, Mapping) and ("Combiner" in content or "CLIP" in content):
        parts = []
        for key in ("Combiner", "CLIP"):
            value = content.get(key)
            if value is not None and not _is_state_dict(value):
                raise CheckpointError(f"Checkpoint {path}: {key!r} is not a state dict (name -> tensor)")
            parts.append(_without_data_parallel(dict(value)) if value is not None else None)
        return parts[0], parts[1]
    if _is_state_dict(content):
        content = _without_data_parallel(dict(content))
        if any(k.startswith(("combiner.", "clip.")) for k in content):
            combiner = {k[len("combiner.") :]: v for k, v in content.items() if k.startswith("combiner.")}
            clip = {k[len("clip.") :]: v for k, v in content.items() if k.startswith("clip.")}
            return combiner or None, clip or None
        if is_openai_layout(content):
            return None, dict(content)
        if _is_combiner(content):
            return dict(content), None
    keys = ", ".join(repr(k) for k in list(content)[:8]) if isinstance(content, Mapping) else type(content).__name__
    raise CheckpointError(
        f"Checkpoint {path}: expected CLIP4Cir's {{'epoch', 'Combiner'}} or {{'epoch', 'CLIP'}} dict or an OpenAI "
        f"CLIP state dict (found {keys})"
    )


def read_official_pair(
    *, combiner: Path, clip: Path | None, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> tuple[StateDict, StateDict | None]:
    """The Combiner state dict from the file ``combiner`` and the CLIP state dict from ``clip`` (else from
    ``combiner`` when it holds both, else None). Raises CheckpointError naming the file at fault, including when
    the two files are swapped (the Combiner file given as the CLIP's, or the CLIP file as the checkpoint)."""
    combiner_state, clip_state = read_official_file(combiner, max_bytes=max_bytes)
    other_combiner: StateDict | None = None
    if clip is not None:
        other_combiner, clip_state = read_official_file(clip, max_bytes=max_bytes)
    if combiner_state is None:
        swapped = " and the CLIP file holds the Combiner: the two files are swapped" if other_combiner else ""
        raise CheckpointError(
            f"Checkpoint {combiner}: holds a CLIP state dict, not the 'Combiner' the checkpoint must hold{swapped}; "
            "give CLIP4Cir's Combiner file ({'epoch', 'Combiner'}) as the checkpoint and the CLIP file as "
            "config['clip_checkpoint']"
        )
    if clip is not None and clip_state is None:
        raise CheckpointError(
            f"Checkpoint {clip} (the CLIP file, config['clip_checkpoint']): holds a 'Combiner' state dict, not a "
            "'CLIP' one; give the fine-tuned CLIP file ({'epoch', 'CLIP'}) or OpenAI's pretrained CLIP state dict"
        )
    return combiner_state, clip_state


def find_official_files(
    folder: Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> tuple[StateDict, StateDict | None]:
    """The Combiner and CLIP state dicts among the checkpoint files of ``folder`` (any names).

    Raises CheckpointError when no file holds a Combiner or when two files hold the same part.
    """
    found: dict[str, tuple[Path, StateDict]] = {}
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES
    )
    for path in files:
        for part, state in zip(("Combiner", "CLIP"), read_official_file(path, max_bytes=max_bytes), strict=True):
            if state is None:
                continue
            if part in found:
                raise CheckpointError(
                    f"Checkpoint folder {folder}: both {found[part][0].name} and {path.name} hold a {part} state dict"
                )
            found[part] = (path, state)
    if "Combiner" not in found:
        names = ", ".join(p.name for p in files) or "no .pt/.pth/.bin/.safetensors files"
        raise CheckpointError(f"Checkpoint folder {folder}: no file holds a 'Combiner' state dict ({names})")
    return found["Combiner"][1], found["CLIP"][1] if "CLIP" in found else None


def combiner_from_state(state: StateDict, *, source: str) -> Combiner:
    """A Combiner sized from its weights (projection and hidden sizes, CLIP feature size). Raises CheckpointError."""
    try:
        projection_dim, clip_dim = state["text_projection_layer.weight"].shape
        hidden_dim = state["combiner_layer.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"Checkpoint {source}: Combiner state dict lacks {exc.args[0]!r}") from None
    combiner = Combiner(int(clip_dim), int(projection_dim), int(hidden_dim))
    load_state_dict_checked(combiner, {k: v.float() for k, v in state.items()}, source=f"{source} (Combiner)")
    return combiner.eval()


def build_official(
    *,
    combiner_state: StateDict,
    clip_state: StateDict,
    tokenizer: ClipBpeTokenizer,
    source: str,
    pad_ratio: float | None = 1.25,
) -> OpenAIClip4Cir:
    """An :class:`OpenAIClip4Cir` from in-memory state dicts. Raises CheckpointError naming ``source``."""
    clip = build_openai_clip(clip_state, source=f"{source} (CLIP)")
    arch = clip.arch
    if len(tokenizer) != arch.vocab_size:
        raise CheckpointError(
            f"{source}: the CLIP has a vocabulary of {arch.vocab_size} tokens but the BPE file {tokenizer.source} "
            f"gives {len(tokenizer)}; use the BPE file the model was trained with ({BPE_FILE_NAME} for OpenAI CLIP)"
        )
    combiner = combiner_from_state(combiner_state, source=source)
    clip_dim = combiner.output_layer.out_features
    if clip_dim != arch.embed_dim:
        name = arch.name or "this CLIP"
        raise CheckpointError(
            f"{source}: the Combiner expects CLIP features of size {clip_dim} but {name} gives {arch.embed_dim}"
        )
    return OpenAIClip4Cir(clip, tokenizer, combiner, pad_ratio=pad_ratio)


#: Where workers find OpenAI's BPE file when a checkpoint does not carry it (set by the admin).
BPE_ENV = "HPBENCH_CLIP_BPE_VOCAB"


def bpe_path(explicit: str | Path | None, *, beside: Path) -> Path:
    """``explicit``, else ``beside/bpe_simple_vocab_16e6.txt.gz``, else the file ``$HPBENCH_CLIP_BPE_VOCAB`` names.

    Raises CheckpointError when none exists.
    """
    if explicit:
        candidates = [Path(explicit)]
    else:
        candidates = [beside / BPE_FILE_NAME] + ([Path(os.environ[BPE_ENV])] if os.environ.get(BPE_ENV) else [])
    for path in candidates:
        if path.is_file():
            return path
    where = (
        f"{explicit} does not exist"
        if explicit
        else f"none given, no {BPE_FILE_NAME} in {beside}"
        + (
            f" and {os.environ[BPE_ENV]} ({BPE_ENV}) does not exist"
            if os.environ.get(BPE_ENV)
            else f", {BPE_ENV} unset"
        )
    )
    raise CheckpointError(
        f"OpenAI CLIP needs its BPE vocabulary ({BPE_FILE_NAME}, from OpenAI's clip package): {where}"
    )


def load_official(
    *,
    combiner: str | Path,
    clip: str | Path | None = None,
    bpe_vocab: str | Path,
    pad_ratio: float | None = 1.25,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> OpenAIClip4Cir:
    """CLIP4Cir from its released files: ``combiner`` (``{"epoch", "Combiner"}``, or a dict also holding
    ``"CLIP"``), ``clip`` (``{"epoch", "CLIP"}`` or a flat OpenAI CLIP state dict; needed unless ``combiner``
    holds the CLIP) and ``bpe_vocab`` (``bpe_simple_vocab_16e6.txt.gz``). Returns the model in eval mode on CPU.

    Raises CheckpointError naming the file and what is wrong.
    """
    combiner_path = Path(combiner)
    combiner_state, clip_state = read_official_pair(
        combiner=combiner_path, clip=Path(clip) if clip is not None else None, max_bytes=max_bytes
    )
    if clip_state is None:
        raise CheckpointError(
            f"Checkpoint {combiner_path}: holds no CLIP weights; give the fine-tuned CLIP file ({{'epoch', 'CLIP'}}) "
            "or OpenAI's pretrained CLIP state dict"
        )
    tokenizer = ClipBpeTokenizer.from_file(bpe_path(bpe_vocab, beside=combiner_path.parent))
    return build_official(
        combiner_state=combiner_state,
        clip_state=clip_state,
        tokenizer=tokenizer,
        source=str(combiner_path),
        pad_ratio=pad_ratio,
    ).eval()
