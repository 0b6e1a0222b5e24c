"""An independent reading of OpenAI CLIP and CLIP4Cir for the tests: the released state-dict layout (key ->
shape, from the published architecture), a functional forward pass over such a state dict, OpenAI's
``SimpleTokenizer`` BPE and CLIP4Cir's ``Combiner.combine_features``. Nothing here imports the zoo's modules."""

from __future__ import annotations

import gzip
import html
import re
from functools import lru_cache
from math import prod
from pathlib import Path

import ftfy
import regex
import torch
import torch.nn.functional as F

# --- the layout ---------------------------------------------------------------------------------------------


def _block_shapes(prefix: str, width: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.attn.in_proj_weight": (3 * width, width),
        f"{prefix}.attn.in_proj_bias": (3 * width,),
        f"{prefix}.attn.out_proj.weight": (width, width),
        f"{prefix}.attn.out_proj.bias": (width,),
        f"{prefix}.ln_1.weight": (width,),
        f"{prefix}.ln_1.bias": (width,),
        f"{prefix}.mlp.c_fc.weight": (4 * width, width),
        f"{prefix}.mlp.c_fc.bias": (4 * width,),
        f"{prefix}.mlp.c_proj.weight": (width, 4 * width),
        f"{prefix}.mlp.c_proj.bias": (width,),
        f"{prefix}.ln_2.weight": (width,),
        f"{prefix}.ln_2.bias": (width,),
    }


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def clip_shapes(
    *,
    embed: int,
    resolution: int,
    layers: tuple[int, int, int, int] | int,
    width: int,
    patch: int | None,
    text_width: int,
    text_layers: int = 12,
    context: int = 77,
    vocab: int = 49408,
) -> dict[str, tuple[int, ...]]:
    """Every key of ``clip_model.state_dict()`` and its shape, for the given hyperparameters."""
    shapes: dict[str, tuple[int, ...]] = {}
    if isinstance(layers, tuple):  # ModifiedResNet
        half = width // 2
        shapes["visual.conv1.weight"] = (half, 3, 3, 3)
        shapes.update(_bn("visual.bn1", half))
        shapes["visual.conv2.weight"] = (half, half, 3, 3)
        shapes.update(_bn("visual.bn2", half))
        shapes["visual.conv3.weight"] = (width, half, 3, 3)
        shapes.update(_bn("visual.bn3", width))
        inplanes = width
        for stage, blocks in enumerate(layers, start=1):
            planes = width * 2 ** (stage - 1)
            for b in range(blocks):
                p = f"visual.layer{stage}.{b}"
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.bn1", planes))
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                shapes.update(_bn(f"{p}.bn2", planes))
                shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                shapes.update(_bn(f"{p}.bn3", planes * 4))
                if b == 0:  # stride 2 (stages 2-4) or a channel change (stage 1)
                    shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                    shapes.update(_bn(f"{p}.downsample.1", planes * 4))
                inplanes = planes * 4
        pooled = width * 32
        shapes["visual.attnpool.positional_embedding"] = ((resolution // 32) ** 2 + 1, pooled)
        for name in ("k_proj", "q_proj", "v_proj"):
            shapes[f"visual.attnpool.{name}.weight"] = (pooled, pooled)
            shapes[f"visual.attnpool.{name}.bias"] = (pooled,)
        shapes["visual.attnpool.c_proj.weight"] = (embed, pooled)
        shapes["visual.attnpool.c_proj.bias"] = (embed,)
    else:  # VisionTransformer
        shapes["visual.class_embedding"] = (width,)
        shapes["visual.positional_embedding"] = ((resolution // patch) ** 2 + 1, width)
        shapes["visual.proj"] = (width, embed)
        shapes["visual.conv1.weight"] = (width, 3, patch, patch)
        for name in ("ln_pre", "ln_post"):
            shapes[f"visual.{name}.weight"] = (width,)
            shapes[f"visual.{name}.bias"] = (width,)
        for b in range(layers):
            shapes.update(_block_shapes(f"visual.transformer.resblocks.{b}", width))
    shapes["positional_embedding"] = (context, text_width)
    shapes["text_projection"] = (text_width, embed)
    shapes["logit_scale"] = ()
    shapes["token_embedding.weight"] = (vocab, text_width)
    shapes["ln_final.weight"] = (text_width,)
    shapes["ln_final.bias"] = (text_width,)
    for b in range(text_layers):
        shapes.update(_block_shapes(f"transformer.resblocks.{b}", text_width))
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights for ``shapes`` scaled to keep activations finite (BatchNorm statistics random too)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        norm = ".bn" in key or "downsample.1" in key or "ln_" in key
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif norm and key.endswith("weight"):
            state[key] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            state[key] = torch.randn(shape, generator=g) / prod(shape[1:]) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


# --- the forward pass ---------------------------------------------------------------------------------------


def _bn_apply(x, s, p):
    return F.batch_norm(x, s[f"{p}.running_mean"], s[f"{p}.running_var"], s[f"{p}.weight"], s[f"{p}.bias"], False)


def _resnet(s, x, heads):
    x = F.relu(_bn_apply(F.conv2d(x, s["visual.conv1.weight"], stride=2, padding=1), s, "visual.bn1"))
    x = F.relu(_bn_apply(F.conv2d(x, s["visual.conv2.weight"], padding=1), s, "visual.bn2"))
    x = F.relu(_bn_apply(F.conv2d(x, s["visual.conv3.weight"], padding=1), s, "visual.bn3"))
    x = F.avg_pool2d(x, 2)
    for stage in (1, 2, 3, 4):
        b = 0
        while f"visual.layer{stage}.{b}.conv1.weight" in s:
            p = f"visual.layer{stage}.{b}"
            stride = 2 if stage > 1 and b == 0 else 1
            out = F.relu(_bn_apply(F.conv2d(x, s[f"{p}.conv1.weight"]), s, f"{p}.bn1"))
            out = F.relu(_bn_apply(F.conv2d(out, s[f"{p}.conv2.weight"], padding=1), s, f"{p}.bn2"))
            if stride > 1:
                out = F.avg_pool2d(out, stride)
            out = _bn_apply(F.conv2d(out, s[f"{p}.conv3.weight"]), s, f"{p}.bn3")
            identity = x
            if f"{p}.downsample.0.weight" in s:
                identity = F.avg_pool2d(x, stride) if stride > 1 else x
                identity = _bn_apply(F.conv2d(identity, s[f"{p}.downsample.0.weight"]), s, f"{p}.downsample.1")
            x = F.relu(out + identity)
            b += 1
    # attention pool, as the released AttentionPool2d (sequence-first)
    t = x.flatten(start_dim=2).permute(2, 0, 1)
    t = torch.cat([t.mean(dim=0, keepdim=True), t], dim=0) + s["visual.attnpool.positional_embedding"][:, None, :]
    a = "visual.attnpool"
    out, _ = F.multi_head_attention_forward(
        query=t[:1],
        key=t,
        value=t,
        embed_dim_to_check=t.shape[-1],
        num_heads=heads,
        q_proj_weight=s[f"{a}.q_proj.weight"],
        k_proj_weight=s[f"{a}.k_proj.weight"],
        v_proj_weight=s[f"{a}.v_proj.weight"],
        in_proj_weight=None,
        in_proj_bias=torch.cat([s[f"{a}.q_proj.bias"], s[f"{a}.k_proj.bias"], s[f"{a}.v_proj.bias"]]),
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=s[f"{a}.c_proj.weight"],
        out_proj_bias=s[f"{a}.c_proj.bias"],
        use_separate_proj_weight=True,
        training=False,
        need_weights=False,
    )
    return out.squeeze(0)


def _blocks(s, prefix, x, heads, mask=None):
    """Residual attention blocks on sequence-first ``(L, N, D)`` tokens."""
    b = 0
    while f"{prefix}.{b}.ln_1.weight" in s:
        p = f"{prefix}.{b}"
        width = x.shape[-1]
        h = F.layer_norm(x, (width,), s[f"{p}.ln_1.weight"], s[f"{p}.ln_1.bias"], 1e-5)
        att, _ = F.multi_head_attention_forward(
            h,
            h,
            h,
            width,
            heads,
            s[f"{p}.attn.in_proj_weight"],
            s[f"{p}.attn.in_proj_bias"],
            None,
            None,
            False,
            0.0,
            s[f"{p}.attn.out_proj.weight"],
            s[f"{p}.attn.out_proj.bias"],
            training=False,
            need_weights=False,
            attn_mask=mask,
        )
        x = x + att
        h = F.layer_norm(x, (width,), s[f"{p}.ln_2.weight"], s[f"{p}.ln_2.bias"], 1e-5)
        h = F.linear(h, s[f"{p}.mlp.c_fc.weight"], s[f"{p}.mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, s[f"{p}.mlp.c_proj.weight"], s[f"{p}.mlp.c_proj.bias"])
        b += 1
    return x


def _vit(s, x):
    width = s["visual.conv1.weight"].shape[0]
    patch = s["visual.conv1.weight"].shape[-1]
    x = F.conv2d(x, s["visual.conv1.weight"], stride=patch)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = s["visual.class_embedding"] + torch.zeros(x.shape[0], 1, width)
    x = torch.cat([cls, x], dim=1) + s["visual.positional_embedding"]
    x = F.layer_norm(x, (width,), s["visual.ln_pre.weight"], s["visual.ln_pre.bias"], 1e-5)
    x = _blocks(s, "visual.transformer.resblocks", x.permute(1, 0, 2), width // 64).permute(1, 0, 2)
    x = F.layer_norm(x[:, 0, :], (width,), s["visual.ln_post.weight"], s["visual.ln_post.bias"], 1e-5)
    return x @ s["visual.proj"]


def encode_image(s: dict[str, torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
    """OpenAI ``CLIP.encode_image`` over state dict ``s`` (fp32)."""
    if "visual.proj" in s:
        return _vit(s, pixels)
    return _resnet(s, pixels, s["visual.layer1.0.conv1.weight"].shape[0] * 32 // 64)


def encode_text(s: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """OpenAI ``CLIP.encode_text`` over the full context with the causal mask, pooled at ``argmax`` id."""
    width = s["ln_final.weight"].shape[0]
    context = s["positional_embedding"].shape[0]
    x = F.embedding(tokens, s["token_embedding.weight"]) + s["positional_embedding"]
    mask = torch.empty(context, context).fill_(float("-inf")).triu_(1)
    x = _blocks(s, "transformer.resblocks", x.permute(1, 0, 2), width // 64, mask).permute(1, 0, 2)
    x = F.layer_norm(x, (width,), s["ln_final.weight"], s["ln_final.bias"], 1e-5)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ s["text_projection"]


def combine(c: dict[str, torch.Tensor], image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """CLIP4Cir's ``Combiner.combine_features`` in eval mode (dropout off), over its state dict ``c``."""
    t = F.relu(F.linear(text, c["text_projection_layer.weight"], c["text_projection_layer.bias"]))
    i = F.relu(F.linear(image, c["image_projection_layer.weight"], c["image_projection_layer.bias"]))
    raw = torch.cat((t, i), -1)
    hidden = F.relu(F.linear(raw, c["combiner_layer.weight"], c["combiner_layer.bias"]))
    gate = torch.sigmoid(
        F.linear(
            F.relu(F.linear(raw, c["dynamic_scalar.0.weight"], c["dynamic_scalar.0.bias"])),
            c["dynamic_scalar.3.weight"],
            c["dynamic_scalar.3.bias"],
        )
    )
    out = F.linear(hidden, c["output_layer.weight"], c["output_layer.bias"]) + gate * text + (1 - gate) * image
    return F.normalize(out, dim=-1)


def combiner_state(clip_dim: int, projection: int, hidden: int, *, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "text_projection_layer": (projection, clip_dim),
        "image_projection_layer": (projection, clip_dim),
        "combiner_layer": (hidden, 2 * projection),
        "output_layer": (clip_dim, hidden),
        "dynamic_scalar.0": (hidden, 2 * projection),
        "dynamic_scalar.3": (1, hidden),
    }
    state = {}
    for name, (out, inp) in shapes.items():
        state[f"{name}.weight"] = torch.randn(out, inp, generator=g) / inp**0.5
        state[f"{name}.bias"] = torch.randn(out, generator=g) * 0.1
    return state


# --- OpenAI's SimpleTokenizer -------------------------------------------------------------------------------


@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


class SimpleTokenizer:
    """OpenAI's algorithm: ftfy + HTML cleanup, lowercase, regex split, byte-level BPE by merge rank."""

    PATTERN = regex.compile(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
        regex.IGNORECASE,
    )

    def __init__(self, bpe_path: Path):
        lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1] if m]
        vocab = list(_bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}

    def _bpe(self, token: str) -> list[str]:
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text: str) -> list[int]:
        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for token in regex.findall(self.PATTERN, text):
            token = "".join(_bytes_to_unicode()[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token))
        return ids

    def tokenize(self, texts: list[str], context: int = 77) -> torch.Tensor:
        """``clip.tokenize(texts, context, truncate=True)``."""
        out = torch.zeros(len(texts), context, dtype=torch.long)
        sot, eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]
        for row, text in enumerate(texts):
            ids = [sot, *self.encode(text), eot]
            if len(ids) > context:
                ids = ids[:context]
                ids[-1] = eot
            out[row, : len(ids)] = torch.tensor(ids)
        return out
