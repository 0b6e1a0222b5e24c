"""Loading CLIP4Cir.

Accepted checkpoints (``checkpoint`` argument of ``load_model("clip4cir", ...)``):

- **The official layout, OpenAI CLIP** (the way in; see ``official.py``): CLIP4Cir's released ``.pt`` files,
  ``{"epoch", "Combiner"}`` and ``{"epoch", "CLIP"}`` (or both keys in one dict), read with
  ``weights_only=True``. ``checkpoint`` is the Combiner file (with the CLIP file given as
  ``config["clip_checkpoint"]`` unless it holds both) or a folder holding the released files under any names.
  The architecture (RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14, ...) is read from the
  CLIP state dict; the tokenizer needs OpenAI's ``bpe_simple_vocab_16e6.txt.gz``: ``config["bpe_vocab"]``, or
  that file in the checkpoint's folder. No Hugging Face folder is involved.
- **Our export**: a folder holding ``clip4cir.json`` and ``model.safetensors`` (or that ``.safetensors``
  file itself, with ``clip4cir.json`` beside it). Tensor keys ``combiner.<Combiner key>`` and, when
  CLIP was fine-tuned, ``clip.<Hugging Face CLIPModel key>``. The JSON gives ``clip_folder`` (relative
  to the JSON's folder, or absolute), ``projection_dim`` and ``hidden_dim``.
- **The official layout on a Hugging Face CLIP** (ViT only): as the first, with ``config["clip_folder"]``
  naming a Hugging Face CLIP folder that gives the architecture and tokenizer; an OpenAI-layout CLIP state
  dict is mapped onto it (``keymap.py``).

Config keys (override the JSON): ``clip_checkpoint``, ``bpe_vocab``, ``clip_folder``,
``projection_dim``/``hidden_dim`` (Hugging Face path; otherwise read from the Combiner's weight shapes),
``pad_ratio``, ``max_bytes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from models_zoo.checkpoints import (
    DEFAULT_MAX_BYTES,
    load_state_dict_checked,
    load_state_dict_file,
)
from models_zoo.clip4cir.bpe import ClipBpeTokenizer
from models_zoo.clip4cir.keymap import is_openai_layout, openai_to_hf
from models_zoo.clip4cir.model import Clip4Cir, Combiner, OpenAIClip4Cir
from models_zoo.clip4cir.official import (
    bpe_path,
    build_official,
    find_official_files,
    read_official_file,
    read_official_pair,
)
from models_zoo.clip_common import load_clip_folder
from models_zoo.errors import CheckpointError

CONFIG_NAME = "clip4cir.json"
WEIGHTS_NAME = "model.safetensors"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Config {path}: cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"Config {path}: expected a JSON object")
    if "clip_folder" in data and not Path(data["clip_folder"]).is_absolute():
        data["clip_folder"] = str(path.parent / data["clip_folder"])
    return data


def _split(state_dict: dict[str, torch.Tensor], *, source: Path) -> tuple[dict, dict]:
    combiner = {k[len("combiner.") :]: v for k, v in state_dict.items() if k.startswith("combiner.")}
    clip = {k[len("clip.") :]: v for k, v in state_dict.items() if k.startswith("clip.")}
    others = [k for k in state_dict if not k.startswith(("combiner.", "clip."))]
    if others:
        raise CheckpointError(
            f"Checkpoint {source}: keys must start with 'combiner.' or 'clip.'; found {len(others)} others: "
            + ", ".join(others[:5])
        )
    return combiner, clip


def _combiner_dims(state: dict[str, torch.Tensor], config: dict[str, Any], *, source: Path) -> tuple[int, int, int]:
    try:
        projection_dim, clip_dim = state["text_projection_layer.weight"].shape
        hidden_dim = state["combiner_layer.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"Checkpoint {source}: Combiner state dict lacks {exc.args[0]!r}") from exc
    return (
        int(clip_dim),
        int(config.get("projection_dim", projection_dim)),
        int(config.get("hidden_dim", hidden_dim)),
    )


def _read(checkpoint: Path, config: dict[str, Any], max_bytes: int | None) -> tuple[dict, dict | None]:
    """(Combiner state dict, CLIP state dict or None); fills ``config`` from a JSON beside the weights."""
    if checkpoint.is_dir():
        json_path, weights = checkpoint / CONFIG_NAME, checkpoint / WEIGHTS_NAME
        if not json_path.is_file():  # CLIP4Cir's released files, under any names
            return find_official_files(checkpoint, max_bytes=max_bytes)
        if not weights.is_file():
            raise CheckpointError(f"Checkpoint folder {checkpoint}: expected {WEIGHTS_NAME} beside {CONFIG_NAME}")
        config.update({k: v for k, v in _read_json(json_path).items() if k not in config})
        combiner, clip = _split(load_state_dict_file(weights, max_bytes=max_bytes), source=weights)
        return combiner, clip or None
    beside = checkpoint.parent / CONFIG_NAME
    if beside.is_file():
        config.update({k: v for k, v in _read_json(beside).items() if k not in config})
    if checkpoint.suffix.lower() == ".safetensors" and not config.get("clip_checkpoint"):
        combiner, clip = _split(load_state_dict_file(checkpoint, max_bytes=max_bytes), source=checkpoint)
        return combiner, clip or None
    extra = config.get("clip_checkpoint")
    return read_official_pair(combiner=checkpoint, clip=Path(extra) if extra else None, max_bytes=max_bytes)


def load(
    checkpoint: Path | None, *, variant: str = "combiner", config: dict[str, Any] | None = None
) -> Clip4Cir | OpenAIClip4Cir:
    """The model in ``checkpoint`` (see the module docstring): an :class:`OpenAIClip4Cir` for OpenAI-layout CLIP
    weights without ``clip_folder``, else a :class:`Clip4Cir` on a Hugging Face CLIP. Raises CheckpointError."""
    config = dict(config or {})
    if checkpoint is None:
        raise CheckpointError("clip4cir needs a checkpoint: a .pt with key 'Combiner' or our export folder")
    max_bytes = config.get("max_bytes", DEFAULT_MAX_BYTES)
    if not checkpoint.exists():
        raise CheckpointError(f"Checkpoint {checkpoint}: not found")
    combiner_state, clip_state = _read(checkpoint, config, max_bytes)
    if checkpoint.is_dir() and config.get("clip_checkpoint"):  # a file's CLIP file is read with it (_read)
        clip_path = Path(config["clip_checkpoint"])
        _, clip_state = read_official_file(clip_path, max_bytes=max_bytes)
        if clip_state is None:
            raise CheckpointError(
                f"Checkpoint {clip_path} (the CLIP file, config['clip_checkpoint']): holds a 'Combiner' state dict, "
                "not a 'CLIP' one"
            )
    if not config.get("clip_folder"):
        if clip_state is not None and is_openai_layout(clip_state):
            beside = checkpoint if checkpoint.is_dir() else checkpoint.parent
            tokenizer = ClipBpeTokenizer.from_file(bpe_path(config.get("bpe_vocab"), beside=beside))
            return build_official(
                combiner_state=combiner_state, clip_state=clip_state, tokenizer=tokenizer, source=str(checkpoint),
                pad_ratio=config.get("pad_ratio", 1.25),
            )
        what = "holds no CLIP weights" if clip_state is None else "holds Hugging Face-layout CLIP weights"
        raise CheckpointError(
            f"Checkpoint {checkpoint}: {what} and no CLIP folder was given; pass the CLIP4Cir CLIP file "
            "({'epoch', 'CLIP'}, or OpenAI's pretrained CLIP state dict) as config['clip_checkpoint'], or a "
            f"Hugging Face CLIP folder as config['clip_folder'] (or in {CONFIG_NAME})"
        )
    clip, tokenizer = load_clip_folder(Path(config["clip_folder"]))
    if clip_state is not None:
        source = f"{checkpoint} (CLIP weights)"
        if is_openai_layout(clip_state):
            clip_state = openai_to_hf(clip_state, source=source)
        # Buffers such as position_ids are not saved by every exporter.
        load_state_dict_checked(
            clip,
            clip_state,
            source=source,
            allow_missing=("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"),
        )
    clip_dim, projection_dim, hidden_dim = _combiner_dims(combiner_state, config, source=checkpoint)
    if clip_dim != clip.config.projection_dim:
        raise CheckpointError(
            f"Checkpoint {checkpoint}: the Combiner expects CLIP features of size {clip_dim} but the CLIP in "
            f"{config['clip_folder']} projects to {clip.config.projection_dim}"
        )
    combiner = Combiner(clip_dim, projection_dim, hidden_dim)
    load_state_dict_checked(combiner, combiner_state, source=f"{checkpoint} (Combiner)")
    return Clip4Cir(clip, tokenizer, combiner, pad_ratio=config.get("pad_ratio", 1.25))


def save_clip4cir(model: Clip4Cir, folder: str | Path, *, clip_folder: str | Path | None = None) -> Path:
    """Export ``model`` as our layout into ``folder`` and return the folder.

    With ``clip_folder`` the JSON points there and only the Combiner is saved; without it the CLIP
    weights are saved too (``clip.*``) and ``clip_folder`` must still be supplied at load time for the
    architecture and tokenizer unless the JSON is edited.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"combiner.{k}": v.detach().cpu().contiguous() for k, v in model.combiner.state_dict().items()}
    if clip_folder is None:
        tensors.update({f"clip.{k}": v.detach().cpu().contiguous() for k, v in model.clip.state_dict().items()})
    save_file(tensors, str(folder / WEIGHTS_NAME))
    comb = model.combiner
    meta: dict[str, Any] = {
        "projection_dim": comb.text_projection_layer.out_features,
        "hidden_dim": comb.combiner_layer.out_features,
    }
    if clip_folder is not None:
        clip_path = Path(clip_folder)
        try:
            meta["clip_folder"] = str(clip_path.resolve().relative_to(folder.resolve()))
        except ValueError:
            meta["clip_folder"] = str(clip_path.resolve())
    (folder / CONFIG_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder
