import pytest
import torch

import models_zoo
from models_zoo import load_model
from models_zoo.encoding import (
    cached_model,
    clear_model_cache,
    encode_image_batches,
    encode_query_batches,
    model_cache_key,
    resolve_device,
)


@pytest.fixture
def demo(tiny_demo_folder):
    return load_model("demo", tiny_demo_folder)


def test_image_batches_equal_direct_model_calls_in_order(demo, images):
    seen = []
    result = encode_image_batches(demo, images, batch_size=2, device="cpu", progress=lambda d, t: seen.append((d, t)))
    with torch.no_grad():
        direct = demo.encode_images(demo.preprocess(images))
    assert result.dtype == torch.float32 and result.device.type == "cpu"
    assert torch.allclose(result, direct, atol=1e-6)
    assert seen == [(2, 3), (3, 3)]


def test_image_batches_read_paths_in_worker_processes(demo, images, tmp_path):
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    result = encode_image_batches(demo, paths, batch_size=2, device="cpu", num_workers=1)
    with torch.no_grad():
        direct = demo.encode_images(demo.preprocess(paths))
    assert torch.allclose(result, direct, atol=1e-6)


def test_query_batches_equal_direct_model_calls(demo, images, texts):
    result = encode_query_batches(demo, images, texts, batch_size=2, device="cpu")
    with torch.no_grad():
        direct = demo.encode_queries(demo.preprocess(images), texts)
    assert torch.allclose(result, direct, atol=1e-6)


def test_blip2_gallery_batches_keep_the_token_axis(tiny_blip2_folder, images):
    model = load_model("blip2_cir", tiny_blip2_folder)
    assert encode_image_batches(model, images, batch_size=2, device="cpu").shape == (3, 4, 16)


def test_mismatched_queries_and_bad_devices_are_refused(demo, images, texts):
    with pytest.raises(ValueError, match="3 reference images but 2 texts"):
        encode_query_batches(demo, images, texts[:2], device="cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")


def test_the_model_cache_loads_once_per_key_and_evicts_the_oldest(tiny_demo_folder):
    clear_model_cache()
    calls = []

    def loader(name):
        return lambda: calls.append(name) or name

    key = model_cache_key(7, tiny_demo_folder)
    assert cached_model(key, loader("a"), max_entries=2) == "a"
    assert cached_model(key, loader("again"), max_entries=2) == "a"
    cached_model("b", loader("b"), max_entries=2)
    cached_model("c", loader("c"), max_entries=2)
    assert cached_model(key, loader("reloaded"), max_entries=2) == "reloaded"
    assert calls == ["a", "b", "c", "reloaded"]
    clear_model_cache()


def test_load_model_rejects_unknown_families_and_variants(tiny_demo_folder):
    with pytest.raises(ValueError, match="Unknown model family"):
        load_model("resnet", tiny_demo_folder)
    with pytest.raises(ValueError, match="Unknown variant"):
        load_model("clip_zeroshot", tiny_demo_folder, variant="product")
    assert issubclass(models_zoo.CheckpointError, ValueError)
    assert set(models_zoo.FAMILIES) == {"clip_zeroshot", "clip4cir", "blip2_cir", "demo"}
