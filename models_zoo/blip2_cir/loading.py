"""Loading BLIP-2 CIR models.

``checkpoint`` is either

- a **Hugging Face BLIP-2 folder** (``config.json`` of a ``Blip2Config`` + weights for
  ``Blip2ForImageTextRetrieval``, e.g. a converted ``blip2-itm-vit-g``), read offline; or
- an **official QuRe / SPRC LAVIS checkpoint file** (``.pth``/``.pt``/``.bin`` read with
  ``weights_only=True``, or ``.safetensors``), a state dict or ``{"model": state_dict, ...}``, renamed
  through ``keymap.KEY_TABLE``. Sizes are read from the tensors; the attention-head counts are not
  visible there and default to the official ViT-g (16) and BERT-base (12) values, overridable with
  ``config["vision_num_attention_heads"]`` / ``config["qformer_num_attention_heads"]`` or a
  ``blip2_cir.json`` file beside the checkpoint holding those keys.

Tokenizer: BERT, from ``vocab.txt`` in the folder (or beside the checkpoint file, or
``config["tokenizer_folder"]``), else a tokenizer saved in that folder. Other config keys:
``max_text_length`` (32), ``pad_ratio`` (1.25), ``max_bytes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models_zoo.blip2_cir.keymap import infer_blip2_config_kwargs, lavis_to_hf
from models_zoo.blip2_cir.model import Blip2Cir
from models_zoo.checkpoints import DEFAULT_MAX_BYTES, load_state_dict_checked, load_state_dict_file
from models_zoo.errors import CheckpointError

CONFIG_NAME = "blip2_cir.json"
_DEFAULT_HEADS = {"vision_num_attention_heads": 16, "qformer_num_attention_heads": 12}


def load_bert_tokenizer(folder: Path) -> Any:
    """A BERT tokenizer from ``folder/vocab.txt`` (lowercasing) or a tokenizer saved in ``folder``."""
    from transformers import AutoTokenizer, BertTokenizer

    vocab = folder / "vocab.txt"
    try:
        if vocab.is_file():
            return BertTokenizer.from_pretrained(folder, local_files_only=True, do_lower_case=True)
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:
        raise CheckpointError(f"Tokenizer in {folder}: cannot be loaded (expected a BERT vocab.txt): {exc}") from exc


def _tiny_opt() -> dict[str, Any]:
    # Blip2Config requires a language-model config; the retrieval model never instantiates it.
    return {
        "model_type": "opt",
        "vocab_size": 8,
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 1,
        "ffn_dim": 8,
    }


def _from_lavis(checkpoint: Path, config: dict[str, Any]) -> Any:
    from transformers import Blip2Config, Blip2ForImageTextRetrieval

    beside = checkpoint.parent / CONFIG_NAME
    if beside.is_file():
        try:
            extra = json.loads(beside.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CheckpointError(f"Config {beside}: not valid JSON: {exc}") from exc
        config = {**extra, **config}
    lavis = load_state_dict_file(checkpoint, max_bytes=config.get("max_bytes", DEFAULT_MAX_BYTES))
    kwargs = infer_blip2_config_kwargs(lavis, source=str(checkpoint))
    heads = {k: int(config.get(k, v)) for k, v in _DEFAULT_HEADS.items()}
    kwargs["vision_config"]["num_attention_heads"] = heads["vision_num_attention_heads"]
    kwargs["qformer_config"]["num_attention_heads"] = heads["qformer_num_attention_heads"]
    for side in ("vision", "qformer"):
        hidden = kwargs[f"{side}_config"]["hidden_size"]
        if hidden % heads[f"{side}_num_attention_heads"]:
            raise CheckpointError(
                f"Checkpoint {checkpoint}: {side} hidden size {hidden} is not divisible by "
                f"{heads[f'{side}_num_attention_heads']} heads; set config['{side}_num_attention_heads']"
            )
    blip_config = Blip2Config(text_config=_tiny_opt(), **kwargs)
    model = Blip2ForImageTextRetrieval(blip_config)
    mapped = lavis_to_hf(lavis, source=str(checkpoint))
    load_state_dict_checked(model, mapped, source=checkpoint, allow_missing=("itm_head.",))
    return model


def _from_hf_folder(folder: Path) -> Any:
    from transformers import Blip2ForImageTextRetrieval

    if not (folder / "config.json").is_file():
        raise CheckpointError(f"BLIP-2 folder {folder}: no config.json (expected a Hugging Face BLIP-2 folder)")
    try:
        return Blip2ForImageTextRetrieval.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"BLIP-2 folder {folder}: cannot load Blip2ForImageTextRetrieval: {exc}") from exc


def load(checkpoint: Path | None, *, variant: str = "qure", config: dict[str, Any] | None = None) -> Blip2Cir:
    """A :class:`Blip2Cir` from a Hugging Face folder or a LAVIS checkpoint file. Raises CheckpointError."""
    config = dict(config or {})
    if checkpoint is None:
        raise CheckpointError("blip2_cir needs a checkpoint: a Hugging Face BLIP-2 folder or a LAVIS .pth file")
    if not checkpoint.exists():
        raise CheckpointError(f"Checkpoint {checkpoint}: not found")
    if checkpoint.is_dir():
        retrieval = _from_hf_folder(checkpoint)
        tokenizer_folder = Path(config.get("tokenizer_folder", checkpoint))
    else:
        retrieval = _from_lavis(checkpoint, config)
        tokenizer_folder = Path(config.get("tokenizer_folder", checkpoint.parent))
    tokenizer = load_bert_tokenizer(tokenizer_folder)
    return Blip2Cir(
        retrieval.eval(),
        tokenizer,
        variant=variant or "qure",
        max_text_length=int(config.get("max_text_length", 32)),
        pad_ratio=config.get("pad_ratio", 1.25),
    )
