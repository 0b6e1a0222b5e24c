"""OpenAI CLIP (the ``clip`` package's model) built from its own state dict: ResNet and ViT image encoders.

CLIP4Cir runs ``clip.load(name)`` and saves ``clip_model.state_dict()``; that state dict alone defines the
architecture, read from tensor shapes the way OpenAI's ``build_model`` reads it (``open_clip_torch`` would do
this too, but it imports torchvision, which does not import beside the pinned CPU torch):

==========================  ===========================================================================
hyperparameter              read from
==========================  ===========================================================================
ViT or ResNet               ``visual.proj`` present -> ViT; else ``visual.layer1..4`` + ``visual.attnpool``
ViT width                   ``visual.conv1.weight`` (width, 3, patch, patch)
ViT patch size              ``visual.conv1.weight.shape[-1]``
ViT layers                  number of ``visual.*.attn.in_proj_weight`` keys
ViT image size              patch * grid, ``visual.positional_embedding`` (grid² + 1, width)
ResNet blocks per stage     distinct ``N`` in ``visual.layer{1,2,3,4}.N.*``
ResNet width                ``visual.layer1.0.conv1.weight.shape[0]`` (stem = width/2, width/2, width)
ResNet image size           32 * side, ``visual.attnpool.positional_embedding`` (side² + 1, width * 32)
embedding size              ``text_projection`` (text width, embed_dim)
context length              ``positional_embedding`` (context, text width)
vocabulary size             ``token_embedding.weight`` (vocab, text width)
text width / layers         ``ln_final.weight`` (width,); distinct ``N`` in ``transformer.resblocks.N.*``
attention heads             not stored: width // 64 (text, ViT), width * 32 // 64 (ResNet attention pool)
==========================  ===========================================================================

The published models (``PUBLISHED``): RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14 and
ViT-L/14@336px. Architecture, as in the paper's released ``clip/model.py``:

- **ModifiedResNet**: a stem of three 3x3 convolutions (stride 2, 1, 1; each BatchNorm + ReLU) and a 2x2
  average pool; four stages of bottleneck blocks (1x1, 3x3, 1x1 convolutions, expansion 4) whose stride-2
  blocks downsample by a 2x2 average pool after the 3x3 convolution (and before the 1x1 shortcut
  convolution); then attention pooling: the mean of the spatial tokens is prepended, a positional embedding
  added, and that first token attends to all tokens (separate q/k/v projections, ``c_proj`` output).
- **VisionTransformer**: a patch convolution without bias, a class token, positional embedding,
  ``ln_pre``, residual attention blocks, ``ln_post`` on the class token, then ``@ proj``.
- **Text**: token + positional embedding, residual attention blocks with a causal mask, ``ln_final``, the
  feature at the position of the largest token id (the end-of-text token) ``@ text_projection``.
- Residual attention block: ``x + attn(ln_1(x))`` then ``x + c_proj(QuickGELU(c_fc(ln_2(x))))`` with
  ``QuickGELU(x) = x * sigmoid(1.702 x)``; LayerNorm eps 1e-5.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.errors import CheckpointError

#: Keys some exporters keep beside the weights (the JIT archives' attributes); not parameters.
NON_PARAMETER_KEYS = ("input_resolution", "context_length", "vocab_size")


@dataclass(frozen=True)
class ClipArchitecture:
    """The hyperparameters of OpenAI's ``CLIP(...)`` constructor. ``vision_layers`` is a 4-tuple for a ResNet."""

    embed_dim: int
    image_resolution: int
    vision_layers: tuple[int, int, int, int] | int
    vision_width: int
    vision_patch_size: int | None
    context_length: int
    vocab_size: int
    transformer_width: int
    transformer_heads: int
    transformer_layers: int

    @property
    def is_resnet(self) -> bool:
        return isinstance(self.vision_layers, tuple)

    @property
    def vision_heads(self) -> int:
        return self.vision_width * 32 // 64 if self.is_resnet else self.vision_width // 64

    @property
    def name(self) -> str | None:
        """The published model with these hyperparameters (``"RN50x4"``), or None for any other."""
        return next((name for name, arch in PUBLISHED.items() if arch == self), None)


def _published(embed, res, layers, width, patch, text_width) -> ClipArchitecture:
    return ClipArchitecture(embed, res, layers, width, patch, 77, 49408, text_width, text_width // 64, 12)


#: OpenAI's released models, as their state dicts give them (``clip.available_models()``).
PUBLISHED: dict[str, ClipArchitecture] = {
    "RN50": _published(1024, 224, (3, 4, 6, 3), 64, None, 512),
    "RN101": _published(512, 224, (3, 4, 23, 3), 64, None, 512),
    "RN50x4": _published(640, 288, (4, 6, 10, 6), 80, None, 640),
    "RN50x16": _published(768, 384, (6, 8, 18, 8), 96, None, 768),
    "RN50x64": _published(1024, 448, (3, 15, 36, 10), 128, None, 1024),
    "ViT-B/32": _published(512, 224, 12, 768, 32, 512),
    "ViT-B/16": _published(512, 224, 12, 768, 16, 512),
    "ViT-L/14": _published(768, 224, 24, 1024, 14, 768),
    "ViT-L/14@336px": _published(768, 336, 24, 1024, 14, 768),
}


def _shape(state: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    try:
        return tuple(state[key].shape)
    except KeyError:
        raise CheckpointError(f"{source}: not an OpenAI CLIP state dict, it lacks {key!r}") from None


def _distinct(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.match(k))})


def infer_architecture(state: Mapping[str, Any], *, source: str = "CLIP state dict") -> ClipArchitecture:
    """The architecture an OpenAI-layout CLIP state dict defines (only shapes are read: meta tensors work).

    Raises CheckpointError naming ``source`` and the missing key or impossible shape.
    """
    if "visual.proj" in state:
        width, _, patch, _ = _shape(state, "visual.conv1.weight", source)
        layers = sum(1 for k in state if k.startswith("visual.") and k.endswith(".attn.in_proj_weight"))
        tokens = _shape(state, "visual.positional_embedding", source)[0]
        grid = round((tokens - 1) ** 0.5)
        if grid * grid + 1 != tokens:
            raise CheckpointError(f"{source}: visual.positional_embedding has {tokens} rows, not a square grid + 1")
        vision_layers: tuple[int, int, int, int] | int = layers
        vision_width, patch_size, resolution = width, patch, patch * grid
    elif any(k.startswith("visual.layer1.") for k in state):
        counts = tuple(_distinct(state, rf"^visual\.layer{stage}\.(\d+)\.") for stage in (1, 2, 3, 4))
        if 0 in counts:
            raise CheckpointError(f"{source}: ResNet CLIP without blocks in stage {counts.index(0) + 1}")
        vision_layers = counts  # type: ignore[assignment]
        vision_width = _shape(state, "visual.layer1.0.conv1.weight", source)[0]
        tokens = _shape(state, "visual.attnpool.positional_embedding", source)[0]
        side = round((tokens - 1) ** 0.5)
        if side * side + 1 != tokens:
            raise CheckpointError(
                f"{source}: visual.attnpool.positional_embedding has {tokens} rows, not a square grid + 1"
            )
        patch_size, resolution = None, side * 32
    else:
        raise CheckpointError(
            f"{source}: not an OpenAI CLIP state dict, it has neither a ViT image encoder (visual.proj) nor a "
            "ResNet one (visual.layer1.*)"
        )
    text_width = _shape(state, "ln_final.weight", source)[0]
    arch = ClipArchitecture(
        embed_dim=_shape(state, "text_projection", source)[1],
        image_resolution=resolution,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=patch_size,
        context_length=_shape(state, "positional_embedding", source)[0],
        vocab_size=_shape(state, "token_embedding.weight", source)[0],
        transformer_width=text_width,
        transformer_heads=text_width // 64,
        transformer_layers=_distinct(state, r"^transformer\.resblocks\.(\d+)\."),
    )
    _check_heads(arch, source)
    return arch


def _check_heads(arch: ClipArchitecture, source: str) -> None:
    """The official code derives head counts from widths (64 channels a head); refuse widths it cannot split."""
    checks = [("text transformer", arch.transformer_width, arch.transformer_heads)]
    embed = arch.vision_width * 32 if arch.is_resnet else arch.vision_width
    checks.append(("ResNet attention pool" if arch.is_resnet else "ViT", embed, arch.vision_heads))
    for what, width, heads in checks:
        if heads < 1 or width % heads:
            raise CheckpointError(
                f"{source}: {what} width {width} cannot be split into heads of 64 channels as OpenAI CLIP does "
                f"({heads} heads); not a CLIP architecture the official code can build"
            )
    if arch.transformer_layers < 1:
        raise CheckpointError(f"{source}: no text transformer blocks (transformer.resblocks.N.*)")


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, width * 4)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(width * 4, width))]
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """``resblocks``: residual attention blocks over batch-first ``(B, L, width)`` tokens."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, *, resolution: int, patch: int, width: int, layers: int, heads: int, embed_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros((resolution // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, embed_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.conv1(pixels).flatten(2).transpose(1, 2)  # (B, grid², width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> (2x2 average pool when strided) -> 1x1 (x4 channels), shortcut avg-pool + 1x1 conv."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride > 1 or inplanes != out:
            # Keys downsample.0 / downsample.1 as in the released model (its "-1" entry is the parameterless pool).
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity()),
                        ("0", nn.Conv2d(inplanes, out, 1, bias=False)),
                        ("1", nn.BatchNorm2d(out)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.avgpool(F.relu(self.bn2(self.conv2(y))))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


class AttentionPool2d(nn.Module):
    """The mean token, prepended to the spatial tokens with a positional embedding, attends to all of them."""

    def __init__(self, side: int, width: int, heads: int, embed_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(side * side + 1, width))
        self.k_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, embed_dim)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        batch, length, width = tokens.shape
        head_dim = width // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, -1, self.heads, head_dim).transpose(1, 2)

        q = split(self.q_proj(tokens[:, :1]))
        k, v = split(self.k_proj(tokens)), split(self.v_proj(tokens))
        pooled = F.scaled_dot_product_attention(q, k, v)  # (B, heads, 1, head_dim)
        return self.c_proj(pooled.transpose(1, 2).reshape(batch, width))


class ModifiedResNet(nn.Module):
    def __init__(self, *, layers: tuple[int, int, int, int], width: int, heads: int, resolution: int, embed_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        for stage, blocks in enumerate(layers):
            planes = width * 2**stage
            stride = 1 if stage == 0 else 2
            modules = [Bottleneck(inplanes, planes, stride)] + [
                Bottleneck(planes * 4, planes) for _ in range(blocks - 1)
            ]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*modules))
            inplanes = planes * 4
        self.attnpool = AttentionPool2d(resolution // 32, width * 32, heads, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(pixels)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return self.attnpool(x)


def official_weight_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype CLIP4Cir's evaluation holds a CLIP's converted weights in when it loads the fine-tuned state
    dict into them on ``device``.

    ``validate.py`` runs ``clip.load(name, device=device, jit=False)``, whose ``build_model`` converts the weights
    to fp16 (``convert_weights``) and widens them back only on CPU; it then ``load_state_dict``s the fine-tuned
    CLIP (copying it into those fp16 tensors, so rounding it) and only then calls ``clip_model.float()``. So
    fp16 on CUDA, fp32 elsewhere.
    """
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def round_as_official_load(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Round in place, keeping their dtype, the tensors OpenAI's ``convert_weights`` converts, to the values
    ``dtype`` holds: convolution and linear weights and biases, ``nn.MultiheadAttention`` input projections and
    biases, and the ``text_projection`` / ``proj`` matrices (embeddings, LayerNorm, BatchNorm, positional
    embeddings and ``logit_scale`` are left as they are). A no-op for fp32; idempotent. Returns ``model``."""
    if dtype == torch.float32:
        return model
    tensors: list[torch.Tensor | None] = []
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            tensors += [module.weight, module.bias]
        if isinstance(module, nn.MultiheadAttention):
            names = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                     "bias_k", "bias_v")
            tensors += [getattr(module, name, None) for name in names]
        tensors += [getattr(module, name, None) for name in ("text_projection", "proj")]
    with torch.no_grad():
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))
    return model


class OpenAIClip(nn.Module):
    """OpenAI's ``CLIP`` with its state-dict keys: ``encode_image(pixels)``, ``encode_text(token_ids)``.

    Precision follows CLIP4Cir's official evaluation on each device (:func:`official_weight_dtype`): the weights
    stay fp32, and moving the module to CUDA (``.to``/``.cuda``, as ``load_model(..., device="cuda")`` does) rounds
    the converted ones to fp16 values (:func:`round_as_official_load`) as the official CUDA path does; on CPU they
    are the file's values, as the official CPU path keeps them. Moving back to CPU keeps them rounded.
    """

    def __init__(self, arch: ClipArchitecture):
        super().__init__()
        self.arch = arch
        if arch.is_resnet:
            self.visual: nn.Module = ModifiedResNet(
                layers=arch.vision_layers,  # type: ignore[arg-type]
                width=arch.vision_width,
                heads=arch.vision_heads,
                resolution=arch.image_resolution,
                embed_dim=arch.embed_dim,
            )
        else:
            self.visual = VisionTransformer(
                resolution=arch.image_resolution,
                patch=arch.vision_patch_size,  # type: ignore[arg-type]
                width=arch.vision_width,
                layers=arch.vision_layers,  # type: ignore[arg-type]
                heads=arch.vision_heads,
                embed_dim=arch.embed_dim,
            )
        width = arch.transformer_width
        self.transformer = Transformer(width, arch.transformer_layers, arch.transformer_heads)
        self.token_embedding = nn.Embedding(arch.vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(arch.context_length, width))
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.zeros(width, arch.embed_dim))
        self.logit_scale = nn.Parameter(torch.zeros(()))

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's signature
        super()._apply(fn, recurse)
        round_as_official_load(self, official_weight_dtype(self.text_projection.device))
        return self

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) image features ``(B, embed_dim)`` from normalised pixels ``(B, 3, R, R)``."""
        return self.visual(pixels.to(self.text_projection.dtype))

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Raw text features ``(B, embed_dim)`` from ``(B, L)`` token ids (L <= context length), pooled at the
        largest id of each row (the end-of-text token). The causal mask makes trailing padding irrelevant, so L
        may be shorter than the context length."""
        length = token_ids.shape[1]
        x = self.token_embedding(token_ids) + self.positional_embedding[:length]
        mask = torch.full((length, length), float("-inf"), device=x.device, dtype=x.dtype).triu_(1)
        x = self.ln_final(self.transformer(x, mask))
        eot = token_ids.argmax(dim=-1)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


def build_openai_clip(state: Mapping[str, torch.Tensor], *, source: str = "CLIP state dict") -> OpenAIClip:
    """An fp32 :class:`OpenAIClip` in eval mode holding ``state`` (OpenAI layout; fp16 weights are widened).

    BatchNorm ``num_batches_tracked`` counters may be absent. Raises CheckpointError naming ``source`` and
    what does not match.
    """
    from models_zoo.checkpoints import load_state_dict_checked

    weights = {k: v for k, v in state.items() if k not in NON_PARAMETER_KEYS}
    arch = infer_architecture(weights, source=source)
    model = OpenAIClip(arch)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    missing_ok = tuple(k for k in model.state_dict() if k.endswith("num_batches_tracked"))
    load_state_dict_checked(model, weights, source=source, allow_missing=missing_ok)
    return model.eval()
