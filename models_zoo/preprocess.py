"""Image preprocessing shared by the families (PIL + torch, no torchvision).

The pipeline is CLIP4Cir's ``targetpad_transform`` (also used by SPRC and QuRe). As in their loaders, an
image file is opened *without* converting it, and every geometric step runs in the image's own mode:

1. target-pad: when ``max(w, h) / min(w, h) > ratio`` (1.25), pad the shorter side symmetrically
   with zeros in the image's mode (torchvision ``F.pad(img, [hp, vp, hp, vp], 0)`` on a PIL image:
   black for RGB/L, transparent black for RGBA, *white* for CMYK, palette index 0 for P, whose
   palette is kept); images already within the ratio are untouched;
2. resize (bicubic) so the short side equals the target size (torchvision ``Resize(int)`` rounding;
   PIL itself resizes P and 1 images with nearest neighbour and RGBA/LA with premultiplied alpha);
3. center-crop to the target size;
4. convert to RGB (``_convert_image_to_rgb``: last, as the official order), then to a float tensor in
   [0, 1] normalised with the CLIP mean/std.

Converting first (as this module once did) changes RGBA, palette and CMYK results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageOps

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TARGET_PAD_RATIO = 1.25


def target_pad(image: PILImage.Image, ratio: float = TARGET_PAD_RATIO) -> PILImage.Image:
    """Pad ``image`` with zeros in its own mode to aspect ratio ``ratio`` when it is more elongated than that.

    As CLIP4Cir's ``TargetPad``: with ``m = max(w, h) / ratio``, pad ``int((m - w) / 2)`` columns on
    each side and ``int((m - h) / 2)`` rows on top and bottom (never negative), filling with 0 in every
    band as torchvision's constant ``pad`` does on PIL images (a P image keeps its palette).
    """
    w, h = image.size
    if max(w, h) / min(w, h) < ratio:
        return image
    scaled = max(w, h) / ratio
    hp = max(int((scaled - w) / 2), 0)
    vp = max(int((scaled - h) / 2), 0)
    if hp == 0 and vp == 0:
        return image
    bands = len(image.getbands())
    fill = 0 if bands == 1 else (0,) * bands
    padded = ImageOps.expand(image, border=(hp, vp, hp, vp), fill=fill)
    if image.mode == "P":
        palette = image.getpalette()
        if palette is not None:
            padded.putpalette(palette)
    return padded


def resize_short_side(image: PILImage.Image, size: int) -> PILImage.Image:
    """Bicubic resize so the short side is ``size``; the long side is ``int(size * long / short)``."""
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    if short == size:
        return image
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    return image.resize((new_w, new_h), PILImage.Resampling.BICUBIC)


def resize_to_cover(image: PILImage.Image, height: int, width: int) -> PILImage.Image:
    """Bicubic resize keeping the aspect ratio so the image covers ``height x width``."""
    w, h = image.size
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    if (new_w, new_h) == (w, h):
        return image
    return image.resize((new_w, new_h), PILImage.Resampling.BICUBIC)


def center_crop(image: PILImage.Image, height: int, width: int) -> PILImage.Image:
    """Crop the central ``height x width`` region (torchvision ``CenterCrop`` rounding)."""
    w, h = image.size
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def to_normalised_tensor(
    image: PILImage.Image, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> torch.Tensor:
    """RGB PIL image -> float32 tensor ``(3, H, W)``, scaled to [0, 1] then normalised per channel."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


def open_image(item: PILImage.Image | str | Path) -> PILImage.Image:
    """``item`` itself, or the decoded file at that path in its own mode, *not* converted (the official
    loaders' ``PIL.Image.open``); raises ValueError naming the file if it cannot be read."""
    if isinstance(item, PILImage.Image):
        return item
    try:
        with PILImage.open(item) as img:
            img.load()
            return img
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read image {item}: {exc}") from exc


@dataclass(frozen=True)
class ImagePreprocessor:
    """Target-pad, resize, center-crop and normalise one image to a ``(3, H, W)`` tensor.

    ``size`` is an int (square output, short side resized to it) or ``(height, width)``.
    ``pad_ratio=None`` disables target padding. Picklable, so DataLoader workers can use it.
    """

    size: int | tuple[int, int] = 224
    pad_ratio: float | None = TARGET_PAD_RATIO
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @property
    def height_width(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else (int(self.size[0]), int(self.size[1]))

    def __call__(self, image: PILImage.Image | str | Path) -> torch.Tensor:
        return to_normalised_tensor(self.geometry(image), self.mean, self.std)

    def geometry(self, image: PILImage.Image | str | Path) -> PILImage.Image:
        """Open, target-pad, resize and crop in the image's own mode, then convert to RGB (the official order):
        the per-image part, before any arithmetic on pixels."""
        img = open_image(image)
        if self.pad_ratio is not None:
            img = target_pad(img, self.pad_ratio)
        height, width = self.height_width
        img = resize_short_side(img, height) if isinstance(self.size, int) else resize_to_cover(img, height, width)
        img = center_crop(img, height, width)
        return img if img.mode == "RGB" else img.convert("RGB")

    def uint8(self, image: PILImage.Image | str | Path) -> torch.Tensor:
        """``(3, H, W)`` uint8 pixels after the geometry; :meth:`normalise` finishes a whole batch at once."""
        return torch.from_numpy(np.array(self.geometry(image), dtype=np.uint8)).permute(2, 0, 1)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)`` (on any device) -> float32 scaled to [0, 1] and normalised, as ``__call__``."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        return pixels.float().div_(255.0).sub_(mean).div_(std)

    def batch(self, images: Sequence[PILImage.Image | str | Path]) -> torch.Tensor:
        """Stack several images into ``(B, 3, H, W)``."""
        return torch.stack([self(image) for image in images])
