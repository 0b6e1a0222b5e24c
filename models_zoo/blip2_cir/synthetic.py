"""Random state dicts in the exact key layout of QuRe's released ``model.pth`` (for tests and benches).

QuRe's ``train_qure.py`` saves ``torch.save(model.state_dict())`` of the whole ``Blip2QuRe`` module built from
LAVIS ``blip2_pretrain_vitL``: the ``clip_L`` ``visual_encoder`` (conv/linear/attention weights in fp16, as
LAVIS ``convert_weights_to_fp16`` leaves them; LayerNorms and embeddings in fp32), ``ln_vision``, the BERT
``Qformer`` (a ``BertLMHeadModel``: ``Qformer.bert.*`` with the ``position_ids`` buffer, and the MLM head
``Qformer.cls.*``), ``query_tokens``, ``vision_proj``, ``text_proj``, ``itm_head`` and ``temp``. The keys here are
written from that published layout, not derived from the zoo's loader, so a test that loads them checks the
loader against the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class QuReSizes:
    """Sizes of a ``Blip2QuRe`` with a ``clip_L`` ViT. Defaults are the released model's."""

    width: int = 1024
    layers: int = 23
    patch: int = 14
    image_size: int = 224
    mlp: int = 4096
    qformer_hidden: int = 768
    qformer_layers: int = 12
    qformer_intermediate: int = 3072
    cross_attention_freq: int = 2
    vocab_size: int = 30523  # bert-base-uncased + LAVIS's [DEC]
    max_positions: int = 512
    query_tokens: int = 32
    embed_dim: int = 256


#: A few-block, small-width model that loads and runs in well under a second on a CPU (2 ViT heads, 12 Q-Former
#: heads of width 4, as the loader's defaults expect).
TINY_SIZES = QuReSizes(
    width=128,
    layers=2,
    patch=8,
    image_size=32,
    mlp=96,
    qformer_hidden=48,
    qformer_layers=2,
    qformer_intermediate=40,
    cross_attention_freq=1,
    vocab_size=96,
    max_positions=40,
    query_tokens=4,
    embed_dim=16,
)


def qure_clip_l_vit_state_dict(sizes: QuReSizes, *, generator: torch.Generator, fp16: bool = True) -> dict:
    """The ``visual_encoder`` of ``sizes`` with unprefixed keys (the layout of LAVIS's ``clip_vit_L.pth``)."""
    w, half = sizes.width, torch.float16 if fp16 else torch.float32

    def rand(*shape: int, std: float = 0.02, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * std).to(dtype)

    def norm(prefix: str) -> dict:
        return {f"{prefix}.weight": 1 + rand(w, std=0.1), f"{prefix}.bias": rand(w, std=0.1)}

    grid = sizes.image_size // sizes.patch
    out = {
        "class_embedding": rand(w, std=0.5),
        "positional_embedding": rand(grid * grid + 1, w, std=0.5),
        "conv1.weight": rand(w, 3, sizes.patch, sizes.patch, std=0.1, dtype=half),
        **norm("ln_pre"),
    }
    for i in range(sizes.layers):
        p = f"transformer.resblocks.{i}"
        out.update(
            {
                f"{p}.attn.in_proj_weight": rand(3 * w, w, std=0.15, dtype=half),
                f"{p}.attn.in_proj_bias": rand(3 * w, std=0.1, dtype=half),
                f"{p}.attn.out_proj.weight": rand(w, w, std=0.1, dtype=half),
                f"{p}.attn.out_proj.bias": rand(w, std=0.1, dtype=half),
                **norm(f"{p}.ln_1"),
                f"{p}.mlp.c_fc.weight": rand(sizes.mlp, w, std=0.1, dtype=half),
                f"{p}.mlp.c_fc.bias": rand(sizes.mlp, std=0.1, dtype=half),
                f"{p}.mlp.c_proj.weight": rand(w, sizes.mlp, std=0.1, dtype=half),
                f"{p}.mlp.c_proj.bias": rand(w, std=0.1, dtype=half),
                **norm(f"{p}.ln_2"),
            }
        )
    return out


def qure_clip_l_state_dict(sizes: QuReSizes = TINY_SIZES, *, seed: int = 0, with_vit: bool = True) -> dict:
    """A random ``Blip2QuRe.state_dict()`` (``pretrain_vitL``) of ``sizes``; ``with_vit=False`` leaves out
    ``visual_encoder.*``, as a file whose ViT came from ``clip_vit_L.pth``."""
    g = torch.Generator().manual_seed(seed)
    h, inter, v = sizes.qformer_hidden, sizes.qformer_intermediate, sizes.vocab_size

    def rand(*shape: int, std: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    def linear(prefix: str, out_features: int, in_features: int) -> dict:
        return {f"{prefix}.weight": rand(out_features, in_features), f"{prefix}.bias": rand(out_features, std=0.05)}

    def norm(prefix: str, width: int) -> dict:
        return {f"{prefix}.weight": 1 + rand(width), f"{prefix}.bias": rand(width)}

    state = {}
    if with_vit:
        vit = qure_clip_l_vit_state_dict(sizes, generator=g)
        state.update({f"visual_encoder.{k}": t for k, t in vit.items()})
    state.update(norm("ln_vision", sizes.width))
    bert = "Qformer.bert"
    state[f"{bert}.embeddings.position_ids"] = torch.arange(sizes.max_positions).expand(1, -1).clone()
    state[f"{bert}.embeddings.word_embeddings.weight"] = rand(v, h, std=0.5)
    state[f"{bert}.embeddings.position_embeddings.weight"] = rand(sizes.max_positions, h, std=0.5)
    state.update(norm(f"{bert}.embeddings.LayerNorm", h))
    for i in range(sizes.qformer_layers):
        p = f"{bert}.encoder.layer.{i}"
        blocks = ["attention"] + (["crossattention"] if i % sizes.cross_attention_freq == 0 else [])
        for block in blocks:
            source = sizes.width if block == "crossattention" else h
            state.update(linear(f"{p}.{block}.self.query", h, h))
            state.update(linear(f"{p}.{block}.self.key", h, source))
            state.update(linear(f"{p}.{block}.self.value", h, source))
            state.update(linear(f"{p}.{block}.output.dense", h, h))
            state.update(norm(f"{p}.{block}.output.LayerNorm", h))
        for suffix in ("", "_query"):
            state.update(linear(f"{p}.intermediate{suffix}.dense", inter, h))
            state.update(linear(f"{p}.output{suffix}.dense", h, inter))
            state.update(norm(f"{p}.output{suffix}.LayerNorm", h))
    state.update(linear("Qformer.cls.predictions.transform.dense", h, h))
    state.update(norm("Qformer.cls.predictions.transform.LayerNorm", h))
    state["Qformer.cls.predictions.decoder.weight"] = state[f"{bert}.embeddings.word_embeddings.weight"].clone()
    state["Qformer.cls.predictions.decoder.bias"] = torch.zeros(v)
    state["Qformer.cls.predictions.bias"] = torch.zeros(v)
    state["query_tokens"] = rand(1, sizes.query_tokens, h, std=0.5)
    state.update(linear("vision_proj", sizes.embed_dim, h))
    state.update(linear("text_proj", sizes.embed_dim, h))
    state.update(linear("itm_head", 2, h))
    state["temp"] = torch.tensor(0.07)
    return state


def make_tiny_qure_clip_l(
    folder: str | Path, *, sizes: QuReSizes = TINY_SIZES, seed: int = 0, with_vit: bool = True
) -> Path:
    """``folder/model.pth`` (``torch.save`` of :func:`qure_clip_l_state_dict`) with a tiny BERT ``vocab.txt``
    beside it; with ``with_vit=False`` the ViT goes to ``folder/clip_vit_L.pth`` instead. Returns the ``.pth``."""
    from models_zoo.tiny import _write_bert_vocab

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = _write_bert_vocab(folder)
    if words > sizes.vocab_size:
        raise ValueError(f"the tiny vocabulary has {words} words but the model {sizes.vocab_size}")
    state = qure_clip_l_state_dict(sizes, seed=seed)
    if not with_vit:
        vit = {k[len("visual_encoder.") :]: t for k, t in state.items() if k.startswith("visual_encoder.")}
        torch.save(vit, folder / "clip_vit_L.pth")
        state = {k: t for k, t in state.items() if not k.startswith("visual_encoder.")}
    path = folder / "model.pth"
    torch.save(state, path)
    return path
