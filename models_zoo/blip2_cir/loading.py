"""Loading BLIP-2 CIR models.

``checkpoint`` is either

- a **Hugging Face BLIP-2 folder** (``config.json`` of a ``Blip2Config`` + weights for
  ``Blip2ForImageTextRetrieval``, e.g. a converted ``blip2-itm-vit-g``), read offline; or
- an **official QuRe / SPRC LAVIS checkpoint file** (``.pth``/``.pt``/``.bin`` read with
  ``weights_only=True``, or ``.safetensors``), a state dict or ``{"model": state_dict, ...}`` (QuRe's
  released ``model.pth`` is ``torch.save(Blip2QuRe.state_dict())``, fp16 ViT weights included). Two ViT
  layouts are recognised from the keys:

  - **EVA ViT-g** (``visual_encoder.blocks.N``, LAVIS ``eva_clip_g``, SPRC's default): renamed through
    ``keymap.KEY_TABLE`` into ``Blip2ForImageTextRetrieval``;
  - **clip_L** (``visual_encoder.transformer.resblocks.N``, LAVIS ``blip2_pretrain_vitL``, every QuRe
    config): ``visual_encoder.*`` and ``ln_vision.*`` load unchanged into ``clip_vit.ClipLVision``
    (architecture read from the tensors, heads = width / 64), which takes the place of the retrieval
    model's ``vision_model``; the Q-Former keys go through the table.

  A file without ``visual_encoder.*`` weights (LAVIS builds the ViT from its own ``clip_vit_L.pth`` and then
  loads the fine-tuned dict non-strictly) needs that ViT file: ``vit_checkpoint=`` or ``clip_vit_L.pth`` (or
  ``clip_vit_L.safetensors``) beside the checkpoint; a submission's ``vit_checkpoint`` file is stored there.
  As LAVIS, at most 23 ViT blocks are used (of the ViT file and of the fine-tuned file),
  ``ln_post``/``proj`` are ignored, ViT weights in the fine-tuned file win over the ViT file's, and the ViT's
  convolution and linear weights are rounded to fp16 values whichever file they come from (``vit_precision``
  fp16, QuRe's; ``config["vit_precision"] = "fp32"`` keeps them as stored): see :func:`as_lavis_clip_l`.

  Sizes are read from the tensors; the EVA and Q-Former attention-head counts are not visible there and
  default to the official ViT-g (16) and BERT-base (12) values, overridable with
  ``config["vision_num_attention_heads"]`` / ``config["qformer_num_attention_heads"]`` or a
  ``blip2_cir.json`` file beside the checkpoint holding those keys.

Tokenizer: BERT (lowercasing), from ``vocab_file=`` (a ``vocab.txt`` such as bert-base-uncased's), else
``vocab.txt`` in the folder (or beside the checkpoint file, or ``config["tokenizer_folder"]``), else a
tokenizer saved in that folder. Other config keys: ``max_text_length`` (32), ``pad_ratio`` (1.25), ``max_bytes``,
``vit_precision`` (``fp16``).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import torch

from models_zoo import CLIP_L_VIT_STEM
from models_zoo.blip2_cir.clip_vit import LAVIS_CLIP_L_BLOCKS, ClipLVision, clip_vit_sizes
from models_zoo.blip2_cir.keymap import infer_blip2_config_kwargs, infer_qformer_config_kwargs, lavis_to_hf
from models_zoo.blip2_cir.model import Blip2Cir
from models_zoo.checkpoints import DEFAULT_MAX_BYTES, load_state_dict_checked, load_state_dict_file
from models_zoo.errors import CheckpointError

CONFIG_NAME = "blip2_cir.json"
#: The ViT file LAVIS ``blip2_pretrain_vitL`` builds its ``clip_L`` tower from, looked for beside the checkpoint
#: (as ``.pth`` or ``.safetensors``).
CLIP_L_VIT_NAME = f"{CLIP_L_VIT_STEM}.pth"
CLIP_L_VIT_SUFFIXES = (".pth", ".safetensors")
_VIT_BLOCK = re.compile(r"^visual_encoder\.transformer\.resblocks\.(\d+)\.")
_DEFAULT_HEADS = {"vision_num_attention_heads": 16, "qformer_num_attention_heads": 12}


def load_bert_tokenizer(folder: Path, *, vocab_file: Path | None = None) -> Any:
    """A lowercasing BERT tokenizer from ``vocab_file``, else ``folder/vocab.txt``, else a tokenizer saved in
    ``folder``. Raises CheckpointError naming the file or folder."""
    from transformers import AutoTokenizer, BertTokenizer

    if vocab_file is not None:
        if not Path(vocab_file).is_file():
            raise CheckpointError(f"Vocabulary {vocab_file}: not found (expected a BERT vocab.txt)")
        try:
            # transformers 5 takes ``vocab`` (and silently ignores ``vocab_file``), 4.x takes ``vocab_file``.
            key = "vocab" if "vocab" in inspect.signature(BertTokenizer.__init__).parameters else "vocab_file"
            tokenizer = BertTokenizer(**{key: str(vocab_file)}, do_lower_case=True)
        except Exception as exc:
            raise CheckpointError(f"Vocabulary {vocab_file}: cannot be loaded as a BERT vocab.txt: {exc}") from exc
        if tokenizer.convert_tokens_to_ids("[CLS]") == tokenizer.convert_tokens_to_ids("[UNK]"):
            raise CheckpointError(f"Vocabulary {vocab_file}: has no [CLS] token (expected a BERT vocab.txt)")
        return tokenizer
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


def _heads(config: dict[str, Any], checkpoint: Path, kwargs: dict[str, Any], sides: tuple[str, ...]) -> None:
    for side in sides:
        key = f"{side}_num_attention_heads"
        heads = int(config.get(key, _DEFAULT_HEADS[key]))
        hidden = kwargs[f"{side}_config"]["hidden_size"]
        if hidden % heads:
            raise CheckpointError(
                f"Checkpoint {checkpoint}: {side} hidden size {hidden} is not divisible by {heads} heads; "
                f"set config['{key}']"
            )
        kwargs[f"{side}_config"]["num_attention_heads"] = heads


def vision_layout(state_dict: dict[str, Any]) -> str:
    """``"clip_L"``, ``"eva_vit_g"``, ``"none"`` (no ``visual_encoder.*`` keys) or ``"unknown"``."""
    vision = [k[len("visual_encoder.") :] for k in state_dict if k.startswith("visual_encoder.")]
    if not vision:
        return "none"
    if any(k == "conv1.weight" or k.startswith("transformer.resblocks.") for k in vision):
        return "clip_L"
    if any(k.startswith(("blocks.", "patch_embed.")) or k == "cls_token" for k in vision):
        return "eva_vit_g"
    return "unknown"


def _clip_l_vit_file(path: Path, *, max_bytes: int | None) -> dict[str, Any]:
    """The ``clip_L`` ViT file as ``visual_encoder.*`` keys, trimmed as LAVIS's non-strict load into 23 blocks."""
    raw = load_state_dict_file(path, max_bytes=max_bytes)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        for prefix in ("visual_encoder.", "visual."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if key == "proj" or key.startswith("ln_post."):
            continue  # CLIP's head; LAVIS's clip_L has none and loads the file non-strictly
        block = key.split(".")[2] if key.startswith("transformer.resblocks.") else None
        if block is not None and int(block) >= LAVIS_CLIP_L_BLOCKS:
            continue
        out[f"visual_encoder.{key}"] = value
    if vision_layout(out) != "clip_L":
        raise CheckpointError(
            f"ViT file {path}: not a clip_L (OpenAI-CLIP-style) ViT state dict (no conv1.weight / "
            "transformer.resblocks.N keys); LAVIS's blip2_pretrain_vitL uses clip_vit_L.pth"
        )
    return out


def _with_vit(
    lavis: dict[str, Any], checkpoint: Path, vit_checkpoint: Path | None, *, max_bytes: int | None
) -> dict[str, Any]:
    """``lavis`` completed with the ViT file's weights when it has none (or when one is given explicitly)."""
    layout = vision_layout(lavis)
    if vit_checkpoint is None and layout == "none":
        found = [p for p in (checkpoint.parent / f"{CLIP_L_VIT_STEM}{s}" for s in CLIP_L_VIT_SUFFIXES) if p.is_file()]
        if not found:
            raise CheckpointError(
                f"Checkpoint {checkpoint}: holds no ViT weights (no visual_encoder.* keys). LAVIS builds the "
                f"clip_L ViT from its own {CLIP_L_VIT_NAME} before loading the fine-tuned weights non-strictly; "
                f"give that file beside the checkpoint as {CLIP_L_VIT_NAME} or {CLIP_L_VIT_STEM}.safetensors "
                "(on hpbench: upload it as the submission's second file, 'vit_checkpoint'; from Python: "
                "vit_checkpoint=...)"
            )
        vit_checkpoint = found[0]
    if vit_checkpoint is None:
        return lavis
    if layout not in ("none", "clip_L"):
        raise CheckpointError(f"Checkpoint {checkpoint}: a clip_L ViT file was given but its ViT is {layout}")
    return {**_clip_l_vit_file(Path(vit_checkpoint), max_bytes=max_bytes), **lavis}


#: ``visual_encoder`` keys LAVIS ``convert_weights_to_fp16`` turns to fp16 (nn.Conv2d / nn.Linear weights and
#: biases; the attention's ``in_proj`` stays fp32, its conversion being commented out in LAVIS).
_FP16_VIT_KEY = re.compile(
    r"^visual_encoder\.(conv1\.weight|transformer\.resblocks\.\d+\.(attn\.out_proj|mlp\.c_fc|mlp\.c_proj)\.(weight|bias))$"
)


def as_lavis_clip_l(lavis: dict[str, Any], *, vit_precision: str = "fp16") -> dict[str, Any]:
    """``lavis`` as LAVIS's ``blip2_pretrain_vitL`` holds it once loaded: ViT blocks past the 23 that
    ``create_clip_vit_L`` builds dropped (it loads non-strictly, so they are ignored), and with ``vit_precision``
    ``"fp16"`` (QuRe's) the ViT's convolution and linear weights and biases rounded to fp16 values, since
    ``convert_weights_to_fp16`` runs after the ViT file is loaded and the fine-tuned weights are copied into those
    fp16 tensors (on every device; on CPU ``load_model_and_preprocess`` widens them back with ``.float()``).
    Files with fewer blocks keep theirs (small test models). Raises ValueError for another precision."""
    if vit_precision not in ("fp16", "fp32"):
        raise ValueError(f"vit_precision {vit_precision!r}: expected 'fp16' or 'fp32'")
    out: dict[str, Any] = {}
    for key, value in lavis.items():
        block = _VIT_BLOCK.match(key)
        if block is not None and int(block.group(1)) >= LAVIS_CLIP_L_BLOCKS:
            continue
        if vit_precision == "fp16" and _FP16_VIT_KEY.match(key) and value.is_floating_point():
            value = value.to(torch.float16)
        out[key] = value
    return out


def _clip_l(lavis: dict[str, Any], checkpoint: Path, config: dict[str, Any]) -> Any:
    from transformers import Blip2Config, Blip2ForImageTextRetrieval

    try:
        lavis = as_lavis_clip_l(lavis, vit_precision=config.get("vit_precision", "fp16"))
    except ValueError as exc:
        raise CheckpointError(f"Checkpoint {checkpoint}: {exc}") from None
    vision = {k[len("visual_encoder.") :]: v for k, v in lavis.items() if k.startswith("visual_encoder.")}
    sizes = clip_vit_sizes(vision, source=f"Checkpoint {checkpoint} (clip_L visual_encoder)")
    kwargs = infer_qformer_config_kwargs(lavis, source=str(checkpoint))
    _heads(config, checkpoint, kwargs, ("qformer",))
    if kwargs["qformer_config"]["encoder_hidden_size"] != sizes["width"]:
        raise CheckpointError(
            f"Checkpoint {checkpoint}: the Q-Former cross-attends to width "
            f"{kwargs['qformer_config']['encoder_hidden_size']} but the clip_L ViT has width {sizes['width']}"
        )
    # The HF config describes the tower (sizes, QuickGELU, eps 1e-5); its own vision layers are not built
    # (0 layers): ClipLVision, whose keys are the released ones, takes the place of ``vision_model``.
    vision_config = {
        "hidden_size": sizes["width"],
        "intermediate_size": sizes["mlp"],
        "num_hidden_layers": 0,
        "num_attention_heads": sizes["heads"],
        "patch_size": sizes["patch_size"],
        "image_size": sizes["image_size"],
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }
    model = Blip2ForImageTextRetrieval(Blip2Config(text_config=_tiny_opt(), vision_config=vision_config, **kwargs))
    model.vision_model = ClipLVision(**sizes)
    direct = {f"vision_model.{k}": v for k, v in lavis.items() if k.startswith(("visual_encoder.", "ln_vision."))}
    rest = {k: v for k, v in lavis.items() if not k.startswith(("visual_encoder.", "ln_vision."))}
    mapped = {**direct, **lavis_to_hf(rest, source=str(checkpoint))}
    load_state_dict_checked(model, mapped, source=checkpoint, allow_missing=("itm_head.",))
    return model


def _eva(lavis: dict[str, Any], checkpoint: Path, config: dict[str, Any]) -> Any:
    from transformers import Blip2Config, Blip2ForImageTextRetrieval

    kwargs = infer_blip2_config_kwargs(lavis, source=str(checkpoint))
    _heads(config, checkpoint, kwargs, ("vision", "qformer"))
    model = Blip2ForImageTextRetrieval(Blip2Config(text_config=_tiny_opt(), **kwargs))
    mapped = lavis_to_hf(lavis, source=str(checkpoint))
    load_state_dict_checked(model, mapped, source=checkpoint, allow_missing=("itm_head.",))
    return model


def _from_lavis(checkpoint: Path, config: dict[str, Any], *, vit_checkpoint: Path | None = None) -> Any:
    beside = checkpoint.parent / CONFIG_NAME
    if beside.is_file():
        try:
            extra = json.loads(beside.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CheckpointError(f"Config {beside}: not valid JSON: {exc}") from exc
        config = {**extra, **config}
    max_bytes = config.get("max_bytes", DEFAULT_MAX_BYTES)
    lavis = load_state_dict_file(checkpoint, max_bytes=max_bytes)
    if vision_layout(lavis) == "none" and not any(k.startswith("Qformer.") for k in lavis):
        raise CheckpointError(
            f"Checkpoint {checkpoint}: not a LAVIS BLIP-2 state dict (no visual_encoder.* or Qformer.* keys; "
            f"first keys: {', '.join(list(lavis)[:5])})"
        )
    lavis = _with_vit(lavis, checkpoint, vit_checkpoint, max_bytes=max_bytes)
    layout = vision_layout(lavis)
    if layout == "clip_L":
        return _clip_l(lavis, checkpoint, config)
    if layout == "eva_vit_g":
        return _eva(lavis, checkpoint, config)
    vision = [k for k in lavis if k.startswith("visual_encoder.")]
    raise CheckpointError(
        f"Checkpoint {checkpoint}: its visual_encoder is neither LAVIS's EVA ViT-g (blocks.N) nor clip_L "
        f"(transformer.resblocks.N), the two supported ViTs; first keys: {', '.join(vision[:5])}"
    )


def _from_hf_folder(folder: Path) -> Any:
    from transformers import Blip2ForImageTextRetrieval

    if not (folder / "config.json").is_file():
        raise CheckpointError(f"BLIP-2 folder {folder}: no config.json (expected a Hugging Face BLIP-2 folder)")
    try:
        return Blip2ForImageTextRetrieval.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"BLIP-2 folder {folder}: cannot load Blip2ForImageTextRetrieval: {exc}") from exc


def load(
    checkpoint: Path | None,
    *,
    variant: str = "qure",
    config: dict[str, Any] | None = None,
    vit_checkpoint: Path | None = None,
    vocab_file: Path | None = None,
) -> Blip2Cir:
    """A :class:`Blip2Cir` from a Hugging Face folder or a LAVIS checkpoint file (EVA ViT-g or clip_L).

    ``vit_checkpoint``: the clip_L ViT file for a checkpoint without ViT weights (default: ``clip_vit_L.pth``
    beside it). ``vocab_file``: the BERT ``vocab.txt`` (default: ``vocab.txt`` beside the checkpoint).
    Raises CheckpointError naming the file and the problem."""
    config = dict(config or {})
    if checkpoint is None:
        raise CheckpointError("blip2_cir needs a checkpoint: a Hugging Face BLIP-2 folder or a LAVIS .pth file")
    if not checkpoint.exists():
        raise CheckpointError(f"Checkpoint {checkpoint}: not found")
    if checkpoint.is_dir():
        retrieval = _from_hf_folder(checkpoint)
        tokenizer_folder = Path(config.get("tokenizer_folder", checkpoint))
    else:
        retrieval = _from_lavis(checkpoint, config, vit_checkpoint=vit_checkpoint)
        tokenizer_folder = Path(config.get("tokenizer_folder", checkpoint.parent))
    tokenizer = load_bert_tokenizer(tokenizer_folder, vocab_file=vocab_file)
    rows = retrieval.embeddings.word_embeddings.num_embeddings
    if len(tokenizer) > rows:
        raise CheckpointError(
            f"Checkpoint {checkpoint}: the BERT vocabulary ({vocab_file or tokenizer_folder}) has {len(tokenizer)} "
            f"tokens but the Q-Former's word embeddings only {rows} rows (QuRe uses bert-base-uncased's vocab.txt)"
        )
    return Blip2Cir(
        retrieval.eval(),
        tokenizer,
        variant=variant or "qure",
        max_text_length=int(config.get("max_text_length", 32)),
        pad_ratio=config.get("pad_ratio", 1.25),
    )
