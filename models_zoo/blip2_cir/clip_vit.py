"""The ``clip_L`` vision tower of LAVIS ``blip2_pretrain_vitL`` (QuRe's released backbone), with ``ln_vision``.

An OpenAI-CLIP-style ViT without its head, as LAVIS ``clip_vit.create_clip_vit_L`` builds it (ViT-L/14: 23
blocks, width 1024, 16 heads, patch 14, 224 px), followed by BLIP-2's ``ln_vision``. The module's parameter
names are the released checkpoint's keys without a prefix change, so ``visual_encoder.*`` and ``ln_vision.*`` of
a ``Blip2QuRe`` state dict load into it directly. State-dict shapes that define the architecture:

==========================================================  ===============================================
key (under ``visual_encoder.``)                              shape
==========================================================  ===============================================
conv1.weight (no bias)                                       (width, 3, patch, patch)
class_embedding                                              (width,)
positional_embedding                                         (grid * grid + 1, width), image = grid * patch
ln_pre.{weight,bias}                                         (width,)
transformer.resblocks.{i}.ln_1 / ln_2.{weight,bias}          (width,)
transformer.resblocks.{i}.attn.in_proj_weight / in_proj_bias (3 * width, width) / (3 * width,)
transformer.resblocks.{i}.attn.out_proj.{weight,bias}        (width, width) / (width,)
transformer.resblocks.{i}.mlp.c_fc.{weight,bias}             (mlp, width) / (mlp,)
transformer.resblocks.{i}.mlp.c_proj.{weight,bias}           (width, mlp) / (width,)
==========================================================  ===============================================

Heads = width / 64 (CLIP's rule; 16 for ViT-L). Every LayerNorm has eps 1e-5 (``ln_vision`` too), the MLP
uses QuickGELU ``x * sigmoid(1.702 x)``, there is no ``ln_post`` and no projection.

Forward: ``conv1`` -> patch tokens, ``[class_embedding; tokens] + positional_embedding``, ``ln_pre``,
residual blocks ``x + attn(ln_1(x))``, ``x + mlp(ln_2(x))``, then ``ln_vision`` -> ``(B, grid^2 + 1, width)``.

Precision follows the released code: on CUDA the convolution, attention and MLP weights are fp16
(LAVIS ``convert_weights_to_fp16``, as the file ships them) and the tower runs under fp16 autocast
(LAVIS ``maybe_autocast``), LayerNorms computing in fp32 and casting back; the output is cast to fp32
before the Q-Former. Elsewhere (CPU) everything is fp32. Moving the module (``.to``/``.cuda``/``.cpu``)
applies that rule.
"""

from __future__ import annotations

import contextlib
import re

import torch
from torch import nn

from models_zoo.errors import CheckpointError

#: LAVIS builds ``clip_L`` with 23 blocks and loads its ViT file non-strictly (later blocks are ignored).
LAVIS_CLIP_L_BLOCKS = 23
HEAD_WIDTH = 64
LAYER_NORM_EPS = 1e-5
_BLOCK = re.compile(r"^transformer\.resblocks\.(\d+)\.")


class CastLayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back to the input's dtype (LAVIS / CLIP ``LayerNorm``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = CastLayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = _Mlp(width, mlp)
        self.ln_2 = CastLayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D)
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp: int):
        super().__init__()
        self.resblocks = nn.Sequential(*(ResidualAttentionBlock(width, heads, mlp) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class ClipVisionTransformer(nn.Module):
    """LAVIS ``clip_vit.VisionTransformer`` (no ``ln_post``, no projection)."""

    def __init__(self, *, image_size: int, patch_size: int, width: int, layers: int, heads: int, mlp: int):
        super().__init__()
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_features = width
        grid = image_size // patch_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.ln_pre = CastLayerNorm(width, eps=LAYER_NORM_EPS)
        self.transformer = _Transformer(width, layers, heads, mlp)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.conv1(pixel_values.to(self.conv1.weight.dtype))  # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, g*g, D)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        return self.transformer(x)


class ClipLVision(nn.Module):
    """``visual_encoder`` (:class:`ClipVisionTransformer`) then ``ln_vision``: BLIP-2's frozen image features."""

    def __init__(self, *, image_size: int, patch_size: int, width: int, layers: int, heads: int, mlp: int):
        super().__init__()
        self.visual_encoder = ClipVisionTransformer(
            image_size=image_size, patch_size=patch_size, width=width, layers=layers, heads=heads, mlp=mlp
        )
        self.ln_vision = CastLayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> fp32 ``(B, grid^2 + 1, width)`` after ``ln_vision``."""
        cuda = pixel_values.device.type == "cuda"
        context = torch.autocast("cuda", dtype=torch.float16) if cuda else contextlib.nullcontext()
        with context:
            features = self.ln_vision(self.visual_encoder(pixel_values))
        return features.float()

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's signature
        super()._apply(fn, recurse)
        dtype = torch.float16 if self.visual_encoder.conv1.weight.device.type == "cuda" else torch.float32
        with torch.no_grad():
            for module in self.visual_encoder.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    tensors = [module.weight, module.bias]
                elif isinstance(module, nn.MultiheadAttention):
                    tensors = [module.in_proj_weight, module.in_proj_bias]
                else:
                    continue
                for tensor in tensors:
                    if tensor is not None and tensor.dtype != dtype:
                        tensor.data = tensor.data.to(dtype)
        return self


def clip_vit_sizes(state_dict: dict[str, torch.Tensor], *, source: str = "checkpoint") -> dict[str, int]:
    """Architecture of a ``clip_L``-style ViT read from its (unprefixed) state dict: keyword arguments of
    :class:`ClipLVision`. Raises CheckpointError naming a missing key or an impossible size."""
    try:
        conv = state_dict["conv1.weight"]
        cls = state_dict["class_embedding"]
        pos = state_dict["positional_embedding"]
        c_fc = state_dict["transformer.resblocks.0.mlp.c_fc.weight"]
    except KeyError as exc:
        raise CheckpointError(f"{source}: not a clip_L (OpenAI-CLIP-style) ViT, {exc.args[0]!r} is missing") from exc
    width, patch = int(cls.shape[-1]), int(conv.shape[-1])
    grid = round((pos.shape[0] - 1) ** 0.5)
    if grid * grid + 1 != pos.shape[0]:
        raise CheckpointError(f"{source}: positional_embedding has {pos.shape[0]} rows, not a square grid plus one")
    if width % HEAD_WIDTH:
        raise CheckpointError(f"{source}: ViT width {width} is not a multiple of {HEAD_WIDTH} (CLIP heads)")
    blocks = {int(m.group(1)) for key in state_dict if (m := _BLOCK.match(key))}
    if blocks != set(range(len(blocks))):
        raise CheckpointError(f"{source}: ViT blocks {sorted(blocks)} are not numbered 0..{len(blocks) - 1}")
    return {
        "image_size": grid * patch,
        "patch_size": patch,
        "width": width,
        "layers": len(blocks),
        "heads": width // HEAD_WIDTH,
        "mlp": int(c_fc.shape[0]),
    }
