"""Image preprocessing shared by the families (PIL + torch, no torchvision).

The pipeline is CLIP4Cir's ``targetpad_transform`` (also used by SPRC and QuRe):

1. target-pad: when ``max(w, h) / min(w, h) > ratio`` (1.25), pad the shorter side symmetrically
   with black so that the aspect ratio becomes ``ratio`` (images already within the ratio are untouched);
2. resize (bicubic) so the short side equals the target size (torchvision ``Resize(int)`` rounding);
3. center-crop to the target size;
4. to a float tensor in [0, 1] and normalise with the CLIP mean/std.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TARGET_PAD_RATIO = 1.25


def target_pad(image: PILImage.Image, ratio: float = TARGET_PAD_RATIO) -> PILImage.Image:
    """Pad ``image`` with zeros (black) to aspect ratio ``ratio`` when it is more elongated than that.

    As CLIP4Cir's ``TargetPad``: with ``m = max(w, h) / ratio``, pad ``int((m - w) / 2)`` columns on
    each side and ``int((m - h) / 2)`` rows on top and bottom (never negative).
    """
    w, h = image.size
    if max(w, h) / min(w, h) < ratio:
        return image
    scaled = max(w, h) / ratio
    hp = max(int((scaled - w) / 2), 0)
    vp = max(int((scaled - h) / 2), 0)
    if hp == 0 and vp == 0:
        return image
    fill = 0 if image.mode in ("L", "1", "I", "F", "P") else (0,) * len(image.getbands())
    padded = PILImage.new(image.mode, (w + 2 * hp, h + 2 * vp), fill)
    padded.paste(image, (hp, vp))
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
    """A PIL image as RGB: ``item`` itself, or the file at that path (raises ValueError naming it if unreadable)."""
    if isinstance(item, PILImage.Image):
        return item.convert("RGB") if item.mode != "RGB" else item
    try:
        with PILImage.open(item) as img:
            return img.convert("RGB")
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
        """Open, target-pad, resize and crop: the per-image part, before any arithmetic on pixels."""
        img = open_image(image)
        if self.pad_ratio is not None:
            img = target_pad(img, self.pad_ratio)
        height, width = self.height_width
        img = resize_short_side(img, height) if isinstance(self.size, int) else resize_to_cover(img, height, width)
        return center_crop(img, height, width)

    def uint8(self, image: PILImage.Image | str | Path) -> torch.Tensor:
        """``(3, H, W)`` uint8 pixels after the geometry; :meth:`normalise` finishes a whole batch at once."""
        return torch.from_numpy(np.array(self.geometry(image).convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)`` (on any device) -> float32 scaled to [0, 1] and normalised, as ``__call__``."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        return pixels.float().div_(255.0).sub_(mean).div_(std)

    def batch(self, images: Sequence[PILImage.Image | str | Path]) -> torch.Tensor:
        """Stack several images into ``(B, 3, H, W)``."""
        return torch.stack([self(image) for image in images])
