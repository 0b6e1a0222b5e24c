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
