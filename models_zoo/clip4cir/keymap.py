"""OpenAI-CLIP state-dict layout -> Hugging Face ``CLIPModel`` layout (ViT backbones).

CLIP4Cir fine-tunes OpenAI's ``clip`` package model and saves ``{"CLIP": model.state_dict()}``.
The mapping (``{i}`` = block index, ``T`` = transpose):

=================================================  =====================================================
OpenAI key                                         Hugging Face CLIPModel key
=================================================  =====================================================
visual.class_embedding                             vision_model.embeddings.class_embedding
visual.positional_embedding                        vision_model.embeddings.position_embedding.weight
visual.conv1.weight                                vision_model.embeddings.patch_embedding.weight
visual.ln_pre.*                                    vision_model.pre_layrnorm.*
visual.transformer.resblocks.{i}.ln_1.*            vision_model.encoder.layers.{i}.layer_norm1.*
visual.transformer.resblocks.{i}.attn.in_proj_*    ...self_attn.{q,k,v}_proj.* (split in three along dim 0)
visual.transformer.resblocks.{i}.attn.out_proj.*   ...self_attn.out_proj.*
visual.transformer.resblocks.{i}.ln_2.*            ...layer_norm2.*
visual.transformer.resblocks.{i}.mlp.c_fc.*        ...mlp.fc1.*
visual.transformer.resblocks.{i}.mlp.c_proj.*      ...mlp.fc2.*
visual.ln_post.*                                   vision_model.post_layernorm.*
visual.proj                                        visual_projection.weight (T)
token_embedding.weight                             text_model.embeddings.token_embedding.weight
positional_embedding                               text_model.embeddings.position_embedding.weight
transformer.resblocks.{i}.*                        text_model.encoder.layers.{i}.* (as the visual blocks)
ln_final.*                                         text_model.final_layer_norm.*
text_projection                                    text_projection.weight (T)
logit_scale                                        logit_scale
=================================================  =====================================================

ResNet backbones (``visual.layer1.*``, ``visual.attnpool.*``; CLIP4Cir's RN50x4) have no Hugging Face
``CLIPModel`` counterpart: they are refused here, and load without a Hugging Face folder (``openai_clip.py``).
"""

from __future__ import annotations

import re

import torch

from models_zoo.errors import CheckpointError

_BLOCK = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_SIMPLE = {
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "logit_scale": "logit_scale",
}
_PREFIXES = {
    "visual.ln_pre.": "vision_model.pre_layrnorm.",
    "visual.ln_post.": "vision_model.post_layernorm.",
    "ln_final.": "text_model.final_layer_norm.",
}
_IGNORED = ("input_resolution", "context_length", "vocab_size")
_RESBLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")


def is_openai_layout(state_dict: dict[str, torch.Tensor]) -> bool:
    """True when the keys look like OpenAI's ``clip`` package (rather than Hugging Face)."""
    return any(k.startswith(("visual.", "transformer.resblocks.", "token_embedding.")) for k in state_dict)


def openai_to_hf(state_dict: dict[str, torch.Tensor], *, source: str = "CLIP state dict") -> dict[str, torch.Tensor]:
    """Rename/reshape an OpenAI-layout CLIP (ViT) state dict to Hugging Face ``CLIPModel`` keys.

    Raises CheckpointError for a ResNet backbone or keys the table does not cover (named in the message).
    """
    if any(k.startswith(("visual.layer1.", "visual.attnpool.")) for k in state_dict):
        raise CheckpointError(
            f"{source}: OpenAI CLIP with a ResNet image encoder (visual.layer*/visual.attnpool.*) cannot be "
            "mapped onto Hugging Face CLIPModel (ViT only); leave out clip_folder and the OpenAI CLIP is built "
            "from the state dict itself (models_zoo.clip4cir.openai_clip)"
        )
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if key in _IGNORED:
            continue
        if key in _SIMPLE:
            out[_SIMPLE[key]] = value
            continue
        if key == "visual.proj":
            out["visual_projection.weight"] = value.t().contiguous()
            continue
        if key == "text_projection":
            out["text_projection.weight"] = value.t().contiguous()
            continue
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is not None:
            out[_PREFIXES[prefix] + key[len(prefix) :]] = value
            continue
        match = _RESBLOCK.match(key)
        if match is None:
            unknown.append(key)
            continue
        tower = "vision_model" if match.group(1) else "text_model"
        base = f"{tower}.encoder.layers.{match.group(2)}."
        rest = match.group(3)
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            kind = "weight" if rest.endswith("weight") else "bias"
            for name, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                out[f"{base}self_attn.{name}.{kind}"] = chunk.contiguous()
            continue
        module, _, param = rest.rpartition(".")
        if module not in _BLOCK:
            unknown.append(key)
            continue
        out[f"{base}{_BLOCK[module]}.{param}"] = value
    if unknown:
        shown = ", ".join(unknown[:5]) + (f", ... ({len(unknown) - 5} more)" if len(unknown) > 5 else "")
        raise CheckpointError(f"{source}: {len(unknown)} OpenAI CLIP keys have no Hugging Face counterpart: {shown}")
    return out


def hf_to_openai(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`openai_to_hf` (for tests and exports)."""
    inverse_simple = {v: k for k, v in _SIMPLE.items()}
    inverse_prefix = {v: k for k, v in _PREFIXES.items()}
    inverse_block = {v: k for k, v in _BLOCK.items()}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    layer = re.compile(r"^(vision_model|text_model)\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    for key, value in state_dict.items():
        if key in inverse_simple:
            out[inverse_simple[key]] = value
        elif key == "visual_projection.weight":
            out["visual.proj"] = value.t().contiguous()
        elif key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()
        elif (prefix := next((p for p in inverse_prefix if key.startswith(p)), None)) is not None:
            out[inverse_prefix[prefix] + key[len(prefix) :]] = value
        elif (match := layer.match(key)) is not None:
            tower, index, module, kind = match.groups()
            base = ("visual." if tower == "vision_model" else "") + f"transformer.resblocks.{index}."
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((base, kind), {})[module[-6]] = value
            else:
                out[f"{base}{inverse_block[module]}.{kind}"] = value
    for (base, kind), parts in qkv.items():
        out[f"{base}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out
