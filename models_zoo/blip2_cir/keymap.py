"""LAVIS (QuRe / SPRC) BLIP-2 state dict -> Hugging Face ``Blip2ForImageTextRetrieval`` state dict.

QuRe (``blip2_qure``) and SPRC (``blip2_cir_align_prompt``) are LAVIS ``Blip2Base`` models: an EVA-CLIP
ViT-g ``visual_encoder`` with ``ln_vision``, a BERT ``Qformer`` with ``query_tokens``, and
``vision_proj`` / ``text_proj`` / ``itm_head`` / ``temp``. Their checkpoints are ``torch.save``d dicts,
usually ``{"model": state_dict, ...}``. Placeholders: ``{i}`` layer index, ``{wb}`` weight|bias,
``{att}`` attention|crossattention, ``{qkv}`` query|key|value, ``{ff}`` intermediate|intermediate_query,
``{out}`` output|output_query, ``{dl}`` dense|LayerNorm.

=========================================================  ==========================================================
LAVIS key                                                  Hugging Face key
=========================================================  ==========================================================
visual_encoder.cls_token                                   vision_model.embeddings.class_embedding
visual_encoder.pos_embed                                   vision_model.embeddings.position_embedding
visual_encoder.patch_embed.proj.{wb}                       vision_model.embeddings.patch_embedding.{wb}
visual_encoder.blocks.{i}.norm1.{wb}                       vision_model.encoder.layers.{i}.layer_norm1.{wb}
visual_encoder.blocks.{i}.norm2.{wb}                       vision_model.encoder.layers.{i}.layer_norm2.{wb}
visual_encoder.blocks.{i}.attn.qkv.weight                  vision_model.encoder.layers.{i}.self_attn.qkv.weight
visual_encoder.blocks.{i}.attn.q_bias + .attn.v_bias       vision_model.encoder.layers.{i}.self_attn.qkv.bias
                                                           (= concat(q_bias, zeros, v_bias): EVA has no key bias)
visual_encoder.blocks.{i}.attn.proj.{wb}                   vision_model.encoder.layers.{i}.self_attn.projection.{wb}
visual_encoder.blocks.{i}.mlp.fc1.{wb} / fc2               vision_model.encoder.layers.{i}.mlp.fc1.{wb} / fc2
ln_vision.{wb}                                             vision_model.post_layernorm.{wb}
Qformer.bert.embeddings.word_embeddings.weight             embeddings.word_embeddings.weight
Qformer.bert.embeddings.position_embeddings.weight         embeddings.position_embeddings.weight
Qformer.bert.embeddings.LayerNorm.{wb}                     qformer.layernorm.{wb}
Qformer.bert.encoder.layer.{i}.{att}.self.{qkv}.{wb}       qformer.encoder.layer.{i}.{att}.attention.{qkv}.{wb}
Qformer.bert.encoder.layer.{i}.{att}.output.{dl}.{wb}      qformer.encoder.layer.{i}.{att}.output.{dl}.{wb}
Qformer.bert.encoder.layer.{i}.{ff}.dense.{wb}             qformer.encoder.layer.{i}.{ff}.dense.{wb}
Qformer.bert.encoder.layer.{i}.{out}.{dl}.{wb}             qformer.encoder.layer.{i}.{out}.{dl}.{wb}
query_tokens                                               query_tokens
vision_proj.{wb}                                           vision_projection.{wb}
text_proj.{wb}                                             text_projection.{wb}
itm_head.{wb}                                              itm_head.{wb}
=========================================================  ==========================================================

Dropped (training-only, no inference role): ``Qformer.cls.*`` (the MLM head), ``temp`` (contrastive
temperature), ``prompt_tokens`` (SPRC's training-time prompt), ``Qformer.bert.embeddings.position_ids``
(a buffer). Any other key is an error naming it. The ``clip_L`` backbone (QuRe's ``pretrain_vitL``) is not
renamed: its ``visual_encoder.*`` / ``ln_vision.*`` keys load as they are into
:class:`models_zoo.blip2_cir.clip_vit.ClipLVision` (see ``loading``); only its Q-Former keys go through this table.
"""

from __future__ import annotations

import re

import torch

from models_zoo.errors import CheckpointError

_SLOTS = {
    "i": r"\d+",
    "wb": "weight|bias",
    "att": "attention|crossattention",
    "qkv": "query|key|value",
    "ff": "intermediate|intermediate_query",
    "out": "output|output_query",
    "dl": "dense|LayerNorm",
}

#: (LAVIS pattern, Hugging Face pattern), one-to-one renames.
KEY_TABLE: list[tuple[str, str]] = [
    ("visual_encoder.cls_token", "vision_model.embeddings.class_embedding"),
    ("visual_encoder.pos_embed", "vision_model.embeddings.position_embedding"),
    ("visual_encoder.patch_embed.proj.{wb}", "vision_model.embeddings.patch_embedding.{wb}"),
    ("visual_encoder.blocks.{i}.norm1.{wb}", "vision_model.encoder.layers.{i}.layer_norm1.{wb}"),
    ("visual_encoder.blocks.{i}.norm2.{wb}", "vision_model.encoder.layers.{i}.layer_norm2.{wb}"),
    ("visual_encoder.blocks.{i}.attn.qkv.weight", "vision_model.encoder.layers.{i}.self_attn.qkv.weight"),
    ("visual_encoder.blocks.{i}.attn.proj.{wb}", "vision_model.encoder.layers.{i}.self_attn.projection.{wb}"),
    ("visual_encoder.blocks.{i}.mlp.fc1.{wb}", "vision_model.encoder.layers.{i}.mlp.fc1.{wb}"),
    ("visual_encoder.blocks.{i}.mlp.fc2.{wb}", "vision_model.encoder.layers.{i}.mlp.fc2.{wb}"),
    ("ln_vision.{wb}", "vision_model.post_layernorm.{wb}"),
    ("Qformer.bert.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
    ("Qformer.bert.embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
    ("Qformer.bert.embeddings.LayerNorm.{wb}", "qformer.layernorm.{wb}"),
    ("Qformer.bert.encoder.layer.{i}.{att}.self.{qkv}.{wb}", "qformer.encoder.layer.{i}.{att}.attention.{qkv}.{wb}"),
    ("Qformer.bert.encoder.layer.{i}.{att}.output.{dl}.{wb}", "qformer.encoder.layer.{i}.{att}.output.{dl}.{wb}"),
    ("Qformer.bert.encoder.layer.{i}.{ff}.dense.{wb}", "qformer.encoder.layer.{i}.{ff}.dense.{wb}"),
    ("Qformer.bert.encoder.layer.{i}.{out}.{dl}.{wb}", "qformer.encoder.layer.{i}.{out}.{dl}.{wb}"),
    ("query_tokens", "query_tokens"),
    ("vision_proj.{wb}", "vision_projection.{wb}"),
    ("text_proj.{wb}", "text_projection.{wb}"),
    ("itm_head.{wb}", "itm_head.{wb}"),
]
#: LAVIS keys that are dropped on purpose (see the module docstring).
DROPPED = [r"Qformer\.cls\..*", r"temp", r"prompt_tokens", r"Qformer\.bert\.embeddings\.position_ids"]
_Q_BIAS = re.compile(r"^visual_encoder\.blocks\.(\d+)\.attn\.([qv])_bias$")
_QKV_BIAS_HF = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.bias$")


def _compile(pattern: str) -> re.Pattern:
    out = re.escape(pattern)
    for slot, alternatives in _SLOTS.items():
        out = out.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>{alternatives})")
    return re.compile(f"^{out}$")


_FORWARD = [(_compile(lavis), hf) for lavis, hf in KEY_TABLE]
_BACKWARD = [(_compile(hf), lavis) for lavis, hf in KEY_TABLE]
_DROPPED = [re.compile(f"^{p}$") for p in DROPPED]


def map_key(key: str) -> str | None:
    """The Hugging Face name of one LAVIS key, or None when the table has no row for it."""
    for pattern, template in _FORWARD:
        match = pattern.match(key)
        if match:
            return template.format(**match.groupdict())
    return None


def lavis_to_hf(state_dict: dict[str, torch.Tensor], *, source: str = "LAVIS state dict") -> dict[str, torch.Tensor]:
    """Rename a LAVIS BLIP-2 state dict to ``Blip2ForImageTextRetrieval`` keys (see the table).

    Raises CheckpointError listing keys that are neither in the table nor dropped, and a ``q_bias``
    without its ``v_bias`` (or the reverse).
    """
    out: dict[str, torch.Tensor] = {}
    biases: dict[str, dict[str, torch.Tensor]] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if any(p.match(key) for p in _DROPPED):
            continue
        bias = _Q_BIAS.match(key)
        if bias:
            biases.setdefault(bias.group(1), {})[bias.group(2)] = value
            continue
        target = map_key(key)
        if target is None:
            unknown.append(key)
        else:
            out[target] = value
    for index, parts in biases.items():
        if set(parts) != {"q", "v"}:
            raise CheckpointError(f"{source}: visual_encoder.blocks.{index}.attn has only {sorted(parts)} bias")
        q, v = parts["q"], parts["v"]
        out[f"vision_model.encoder.layers.{index}.self_attn.qkv.bias"] = torch.cat((q, torch.zeros_like(q), v))
    if unknown:
        shown = ", ".join(unknown[:5]) + (f", ... ({len(unknown) - 5} more)" if len(unknown) > 5 else "")
        raise CheckpointError(f"{source}: {len(unknown)} keys have no BLIP-2 counterpart in the key map: {shown}")
    return out


def hf_to_lavis(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`lavis_to_hf` (the key bias thirds of ``qkv.bias`` are dropped; they are zero
    in EVA). Used to build synthetic LAVIS checkpoints for tests."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        bias = _QKV_BIAS_HF.match(key)
        if bias:
            q, _, v = value.chunk(3)
            out[f"visual_encoder.blocks.{bias.group(1)}.attn.q_bias"] = q.clone()
            out[f"visual_encoder.blocks.{bias.group(1)}.attn.v_bias"] = v.clone()
            continue
        for pattern, template in _BACKWARD:
            match = pattern.match(key)
            if match:
                out[template.format(**match.groupdict())] = value
                break
        else:
            raise KeyError(f"No LAVIS name for Hugging Face key {key!r}")
    return out


def infer_qformer_config_kwargs(state_dict: dict[str, torch.Tensor], *, source: str = "checkpoint") -> dict:
    """Q-Former and projection sizes of a LAVIS BLIP-2 read from its tensors (any ViT): ``Blip2Config``
    keyword arguments ``qformer_config`` (without the head count), ``num_query_tokens`` and
    ``image_text_hidden_size``. Raises CheckpointError if a needed key is absent."""
    try:
        query_tokens = state_dict["query_tokens"]
        words = state_dict["Qformer.bert.embeddings.word_embeddings.weight"]
        positions = state_dict["Qformer.bert.embeddings.position_embeddings.weight"]
        vision_proj = state_dict["vision_proj.weight"]
        inter = state_dict["Qformer.bert.encoder.layer.0.intermediate_query.dense.weight"]
        encoder_hidden = state_dict["Qformer.bert.encoder.layer.0.crossattention.self.key.weight"].shape[1]
    except KeyError as exc:
        raise CheckpointError(
            f"{source}: not a LAVIS BLIP-2 Q-Former state dict, {exc.args[0]!r} is missing"
        ) from exc
    q_layers = 1 + max(
        int(m.group(1)) for k in state_dict if (m := re.match(r"Qformer\.bert\.encoder\.layer\.(\d+)\.", k))
    )
    cross = sorted(
        {
            int(m.group(1))
            for k in state_dict
            if (m := re.match(r"Qformer\.bert\.encoder\.layer\.(\d+)\.crossattention\.", k))
        }
    )
    frequency = cross[1] - cross[0] if len(cross) > 1 else q_layers
    if not cross or cross != list(range(0, q_layers, frequency)):
        raise CheckpointError(f"{source}: Q-Former cross-attention layers {cross} are not evenly spaced from 0")
    return {
        "qformer_config": {
            "vocab_size": words.shape[0],
            "hidden_size": query_tokens.shape[-1],
            "intermediate_size": inter.shape[0],
            "num_hidden_layers": q_layers,
            "max_position_embeddings": positions.shape[0],
            "cross_attention_frequency": frequency,
            "encoder_hidden_size": encoder_hidden,
            "use_qformer_text_input": True,
        },
        "num_query_tokens": query_tokens.shape[1],
        "image_text_hidden_size": vision_proj.shape[0],
    }


def infer_blip2_config_kwargs(state_dict: dict[str, torch.Tensor], *, source: str = "checkpoint") -> dict:
    """Sizes of a LAVIS BLIP-2 with an EVA ViT-g-style ``visual_encoder`` read from its tensors:
    ``Blip2Config`` keyword arguments (without the attention-head counts, which tensors do not reveal).
    Raises CheckpointError if a needed key is absent."""
    try:
        cls = state_dict["visual_encoder.cls_token"]
        pos = state_dict["visual_encoder.pos_embed"]
        patch = state_dict["visual_encoder.patch_embed.proj.weight"]
        fc1 = state_dict["visual_encoder.blocks.0.mlp.fc1.weight"]
    except KeyError as exc:
        raise CheckpointError(
            f"{source}: not a LAVIS BLIP-2 state dict with an EVA ViT-g visual_encoder, {exc.args[0]!r} is missing"
        ) from exc
    vision_layers = 1 + max(
        int(m.group(1)) for k in state_dict if (m := re.match(r"visual_encoder\.blocks\.(\d+)\.", k))
    )
    patch_size = patch.shape[-1]
    grid = round((pos.shape[1] - 1) ** 0.5)
    return {
        "vision_config": {
            "hidden_size": cls.shape[-1],
            "intermediate_size": fc1.shape[0],
            "num_hidden_layers": vision_layers,
            "patch_size": patch_size,
            "image_size": grid * patch_size,
            "qkv_bias": True,
            "layer_norm_eps": 1e-6,
        },
        **infer_qformer_config_kwargs(state_dict, source=source),
    }
