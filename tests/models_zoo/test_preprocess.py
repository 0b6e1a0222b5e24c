import torch
from PIL import Image

from models_zoo.preprocess import CLIP_MEAN, CLIP_STD, ImagePreprocessor, center_crop, resize_short_side, target_pad


def test_target_pad_widens_a_tall_image_to_ratio_1_25():
    padded = target_pad(Image.new("RGB", (100, 300), (255, 255, 255)))
    # max side 300 / 1.25 = 240 -> 70 columns of black on each side
    assert padded.size == (240, 300)
    assert padded.getpixel((0, 150)) == (0, 0, 0)
    assert padded.getpixel((69, 150)) == (0, 0, 0)
    assert padded.getpixel((70, 150)) == (255, 255, 255)
    assert padded.getpixel((239, 150)) == (0, 0, 0)


def test_target_pad_heightens_a_wide_image():
    padded = target_pad(Image.new("RGB", (300, 100)))
    assert padded.size == (300, 240)


def test_target_pad_leaves_images_within_the_ratio_alone():
    image = Image.new("RGB", (100, 120))
    assert target_pad(image) is image


def test_resize_and_crop_follow_torchvision_rounding():
    resized = resize_short_side(Image.new("RGB", (240, 300)), 224)
    assert resized.size == (224, 280)
    cropped = center_crop(resized, 224, 224)
    assert cropped.size == (224, 224)


def test_preprocessor_normalises_with_clip_statistics():
    tensor = ImagePreprocessor(size=8)(Image.new("RGB", (8, 8), (255, 0, 128)))
    assert tensor.shape == (3, 8, 8)
    expected = [
        (1.0 - CLIP_MEAN[0]) / CLIP_STD[0],
        (0.0 - CLIP_MEAN[1]) / CLIP_STD[1],
        (128 / 255 - CLIP_MEAN[2]) / CLIP_STD[2],
    ]
    assert torch.allclose(tensor[:, 4, 4], torch.tensor(expected), atol=1e-5)


def test_preprocessor_pads_a_tall_image_with_black_before_resizing():
    tensor = ImagePreprocessor(size=(30, 24))(Image.new("RGB", (100, 300), (255, 255, 255)))
    assert tensor.shape == (3, 30, 24)
    black = (0.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    assert abs(tensor[0, 15, 0].item() - black) < 1e-4  # left padding column
    assert tensor[0, 15, 12].item() > 1.5  # white centre


def test_preprocessor_reads_paths_and_converts_grey_images(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (20, 20), 255).save(path)
    batch = ImagePreprocessor(size=16).batch([path, Image.new("L", (20, 20), 255)])
    assert batch.shape == (2, 3, 16, 16)
    assert torch.equal(batch[0], batch[1])


def test_the_batch_path_uint8_then_normalise_equals_the_per_image_path():
    import torch
    from PIL import Image

    from models_zoo.preprocess import ImagePreprocessor

    pre = ImagePreprocessor(size=(40, 32))
    images = [Image.new("RGB", (60, 150), (200, 30, 90)), Image.new("RGB", (96, 128), (5, 250, 17))]
    batch = pre.normalise(torch.stack([pre.uint8(image) for image in images]))
    assert torch.allclose(batch, pre.batch(images), atol=1e-6)


# --- every image mode, in the official order: pad and resize in the image's own mode, RGB last ---------------

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _mode_image(mode: str) -> Image.Image:
    """A tall (40 x 90, so it is padded) random image in ``mode``; a P image whose palette index 0 is not black."""
    rng = np.random.default_rng(7)
    if mode == "P":
        image = Image.frombytes("P", (40, 90), rng.integers(0, 16, (90, 40), dtype=np.uint8).tobytes())
        palette = rng.integers(30, 256, (256, 3), dtype=np.uint8)
        image.putpalette(palette.ravel().tolist())
        return image
    bands = {"L": 1, "RGBA": 4, "CMYK": 4}[mode]
    return Image.frombytes(mode, (40, 90), rng.integers(0, 256, (90, 40, bands), dtype=np.uint8).tobytes())


def _reference(image: Image.Image, size: int) -> torch.Tensor:
    """QuRe / CLIP4Cir ``targetpad_transform`` written out: zero padding of the raw bands (numpy), PIL bicubic
    resize in the image's mode, RGB conversion, center crop, normalisation."""
    w, h = image.size
    scaled = max(w, h) / 1.25
    hp, vp = max(int((scaled - w) / 2), 0), max(int((scaled - h) / 2), 0)
    raw = np.asarray(image)
    widths = ((vp, vp), (hp, hp)) + (((0, 0),) if raw.ndim == 3 else ())
    padded_raw = np.pad(raw, widths, constant_values=0)
    padded = Image.frombytes(image.mode, (w + 2 * hp, h + 2 * vp), np.ascontiguousarray(padded_raw).tobytes())
    if image.mode == "P":
        padded.putpalette(image.getpalette())
    pw, ph = padded.size
    new = (size, int(size * ph / pw)) if pw <= ph else (int(size * pw / ph), size)
    rgb = np.asarray(padded.resize(new, Image.Resampling.BICUBIC).convert("RGB"), dtype=np.float64)
    top, left = int(round((new[1] - size) / 2.0)), int(round((new[0] - size) / 2.0))
    crop = rgb[top : top + size, left : left + size] / 255.0
    out = (crop - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    return torch.from_numpy(out).permute(2, 0, 1).float()


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK", "L"])
def test_every_mode_is_padded_and_resized_in_its_own_mode_and_converted_to_rgb_last(mode, tmp_path):
    image = _mode_image(mode)
    pre = ImagePreprocessor(size=16)
    expected = _reference(image, 16)
    assert (pre(image) - expected).abs().max().item() < 1e-5
    path = tmp_path / f"image.{'jpg' if mode == 'CMYK' else 'png'}"
    if mode != "CMYK":  # PNG keeps the mode losslessly; a file opens unconverted like the official loaders
        image.save(path)
        assert (pre(path) - expected).abs().max().item() < 1e-5
        assert torch.equal(pre.normalise(pre.uint8(path)[None])[0], pre(path))
    converted_first = pre(image.convert("RGB"))
    difference = (converted_first - expected).abs().max().item()
    if mode == "L":
        assert difference < 1e-5  # grey converts pointwise, before or after
    else:
        assert difference > 0.05  # the old order (RGB first) gives other pixels for these modes
