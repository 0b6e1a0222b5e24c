"""OpenAI CLIP built from its state dict: every published architecture read from shapes, exact forward passes."""

import pytest
import torch

from models_zoo import CheckpointError
from models_zoo.clip4cir.openai_clip import PUBLISHED, OpenAIClip, build_openai_clip, infer_architecture
from tests.models_zoo import openai_clip_reference as ref

# The released models' hyperparameters (OpenAI's model card / clip.available_models()).
PUBLISHED_TABLE = {
    #  name        embed  res  vision layers      width  patch text width
    "RN50": (1024, 224, (3, 4, 6, 3), 64, None, 512),
    "RN101": (512, 224, (3, 4, 23, 3), 64, None, 512),
    "RN50x4": (640, 288, (4, 6, 10, 6), 80, None, 640),
    "RN50x16": (768, 384, (6, 8, 18, 8), 96, None, 768),
    "ViT-B/32": (512, 224, 12, 768, 32, 512),
    "ViT-B/16": (512, 224, 12, 768, 16, 512),
    "ViT-L/14": (768, 224, 24, 1024, 14, 768),
}


def _meta_state(name: str) -> dict[str, torch.Tensor]:
    embed, res, layers, width, patch, text_width = PUBLISHED_TABLE[name]
    shapes = ref.clip_shapes(
        embed=embed, resolution=res, layers=layers, width=width, patch=patch, text_width=text_width
    )
    return {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}


@pytest.mark.parametrize("name", list(PUBLISHED_TABLE))
def test_every_published_architecture_is_read_from_its_state_dict_shapes(name):
    embed, res, layers, width, patch, text_width = PUBLISHED_TABLE[name]
    arch = infer_architecture(_meta_state(name))
    assert (arch.embed_dim, arch.image_resolution, arch.vision_layers) == (embed, res, layers)
    assert (arch.vision_width, arch.vision_patch_size) == (width, patch)
    assert (arch.context_length, arch.vocab_size) == (77, 49408)
    assert (arch.transformer_width, arch.transformer_heads, arch.transformer_layers) == (
        text_width,
        text_width // 64,
        12,
    )
    assert arch.vision_heads == (width * 32 // 64 if isinstance(layers, tuple) else width // 64)
    assert arch.name == name and PUBLISHED[name] == arch


@pytest.mark.parametrize("name", list(PUBLISHED_TABLE))
def test_the_model_built_for_each_published_architecture_has_exactly_the_released_keys_and_shapes(name):
    state = _meta_state(name)
    with torch.device("meta"):
        model = OpenAIClip(infer_architecture(state))
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert built == {k: tuple(v.shape) for k, v in state.items()}


TINY = {
    "resnet": dict(
        embed=32, resolution=64, layers=(4, 6, 10, 6), width=8, patch=None, text_width=128, text_layers=2, vocab=600
    ),
    "vit": dict(embed=32, resolution=32, layers=2, width=128, patch=8, text_width=128, text_layers=2, vocab=600),
}


@pytest.mark.parametrize("kind", list(TINY))
def test_a_tiny_clip_encodes_images_and_texts_as_the_released_forward_pass(kind):
    state = ref.random_state(ref.clip_shapes(**TINY[kind]), seed=3)
    model = build_openai_clip(state)
    pixels = torch.randn(
        3, 3, TINY[kind]["resolution"], TINY[kind]["resolution"], generator=torch.Generator().manual_seed(1)
    )
    tokens = torch.zeros(3, 77, dtype=torch.long)
    for row, length in enumerate((5, 12, 77)):
        tokens[row, 0] = 597
        tokens[row, 1 : length - 1] = torch.randint(0, 590, (length - 2,), generator=torch.Generator().manual_seed(row))
        tokens[row, length - 1] = 599  # the end-of-text token has the largest id
    with torch.no_grad():
        images, expected_images = model.encode_image(pixels), ref.encode_image(state, pixels)
        # The zoo encodes only up to the longest text; the released code always runs all 77 positions.
        texts = model.encode_text(tokens[:2, :12])
        texts_full = model.encode_text(tokens)
        expected_texts = ref.encode_text(state, tokens)
    assert images.shape == (3, 32) and expected_images.abs().max() > 0.1
    assert (images - expected_images).abs().max() <= 1e-5
    assert (texts - expected_texts[:2]).abs().max() <= 1e-5
    assert (texts_full - expected_texts).abs().max() <= 1e-5


def test_fp16_weights_are_widened_to_fp32():
    state = {
        k: v.half() if v.is_floating_point() else v for k, v in ref.random_state(ref.clip_shapes(**TINY["vit"])).items()
    }
    model = build_openai_clip(state)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_the_jit_archives_attribute_keys_and_missing_batchnorm_counters_are_accepted():
    state = ref.random_state(ref.clip_shapes(**TINY["resnet"]))
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    state.update(input_resolution=torch.tensor(64), context_length=torch.tensor(77), vocab_size=torch.tensor(600))
    assert build_openai_clip(state).arch.vision_layers == (4, 6, 10, 6)


def test_what_is_not_an_openai_clip_is_refused_with_the_reason():
    state = ref.random_state(ref.clip_shapes(**TINY["vit"]))
    with pytest.raises(CheckpointError, match="neither a ViT image encoder"):
        infer_architecture({"vision_model.embeddings.class_embedding": torch.zeros(4)}, source="x.pt")
    with pytest.raises(CheckpointError, match="x.pt: not an OpenAI CLIP state dict, it lacks 'ln_final.weight'"):
        infer_architecture({k: v for k, v in state.items() if k != "ln_final.weight"}, source="x.pt")
    with pytest.raises(CheckpointError, match="not a square grid"):
        infer_architecture({**state, "visual.positional_embedding": torch.zeros(18, 128)})
    with pytest.raises(CheckpointError, match="text transformer width 40 cannot be split into heads of 64"):
        infer_architecture({**state, "ln_final.weight": torch.zeros(40)})
    with pytest.raises(CheckpointError, match=r"missing keys: visual.ln_post.bias"):
        build_openai_clip({k: v for k, v in state.items() if k != "visual.ln_post.bias"}, source="x.pt")
    with pytest.raises(CheckpointError, match=r"visual.proj: checkpoint \(128, 16\) vs model \(128, 32\)"):
        build_openai_clip({**state, "visual.proj": torch.zeros(128, 16)})
