import pytest
import torch
import torch.nn.functional as F

from models_zoo import load_model
from models_zoo.clip_common import as_vector


@pytest.mark.parametrize("variant", ["sum", "mean", "image", "text"])
def test_every_variant_gives_unit_query_and_gallery_vectors(tiny_clip_folder, images, texts, variant):
    model = load_model("clip_zeroshot", tiny_clip_folder, variant=variant)
    pixels = model.preprocess(images)
    assert pixels.shape == (3, 3, 32, 32)
    queries, gallery = model.encode_queries(pixels, texts), model.encode_images(pixels)
    assert queries.shape == (3, 16) and gallery.shape == (3, 16)
    assert torch.allclose(queries.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert model.score(queries, gallery).shape == (3, 3)


def test_sum_and_mean_are_computed_from_the_raw_clip_features(tiny_clip_folder, images, texts):
    summed = load_model("clip_zeroshot", tiny_clip_folder, variant="sum")
    meaned = load_model("clip_zeroshot", tiny_clip_folder, variant="mean")
    pixels = summed.preprocess(images)
    clip, tokenizer = summed.clip, summed.tokenizer
    with torch.no_grad():
        image = as_vector(clip.get_image_features(pixel_values=pixels))
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
        text = as_vector(clip.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]))
        expected_sum = (image + text) / (image + text).norm(dim=-1, keepdim=True)
        unit_i, unit_t = image / image.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
        expected_mean = (unit_i + unit_t) / (unit_i + unit_t).norm(dim=-1, keepdim=True)
        assert torch.allclose(summed.encode_queries(pixels, texts), expected_sum, atol=1e-5)
        assert torch.allclose(meaned.encode_queries(pixels, texts), expected_mean, atol=1e-5)
        assert not torch.allclose(expected_sum, expected_mean, atol=1e-3)
        assert torch.allclose(summed.encode_images(pixels), unit_i, atol=1e-5)


def test_text_pooling_uses_the_tokenizers_end_token(tiny_clip_folder):
    model = load_model("clip_zeroshot", tiny_clip_folder, variant="text")
    with torch.no_grad():
        a = model.encode_queries(torch.zeros(2, 3, 32, 32), ["is red", "has stripes and is shorter"])
    assert not torch.allclose(a[0], a[1], atol=1e-4)  # pooled at position 0 both would be equal


def test_the_score_is_the_cosine_similarity(tiny_clip_folder, images, texts):
    model = load_model("clip_zeroshot", tiny_clip_folder, variant="mean")
    with torch.no_grad():
        pixels = model.preprocess(images)
        q, g = model.encode_queries(pixels, texts), model.encode_images(pixels)
    expected = F.cosine_similarity(q[:, None, :], g[None, :, :], dim=-1)
    assert torch.allclose(model.score(q, g), expected, atol=1e-5)


def test_a_missing_folder_is_a_checkpoint_error(tmp_path):
    from models_zoo import CheckpointError

    with pytest.raises(CheckpointError, match="not found"):
        load_model("clip_zeroshot", tmp_path / "nope")
