import pytest
import torch
import torch.nn.functional as F

from models_zoo import CheckpointError, load_model
from models_zoo.clip4cir import Combiner, save_clip4cir
from models_zoo.clip4cir.keymap import hf_to_openai, openai_to_hf


def test_it_loads_our_export_and_returns_unit_vectors(tiny_clip4cir_folder, images, texts):
    model = load_model("clip4cir", tiny_clip4cir_folder)
    with torch.no_grad():
        pixels = model.preprocess(images)
        q, g = model.encode_queries(pixels, texts), model.encode_images(pixels)
    assert q.shape == (3, 16) and g.shape == (3, 16)
    assert torch.allclose(q.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_the_combiner_matches_a_direct_computation():
    torch.manual_seed(0)
    combiner = Combiner(8, 6, 10).eval()
    image, text = torch.randn(4, 8), torch.randn(4, 8)
    with torch.no_grad():
        t = F.relu(text @ combiner.text_projection_layer.weight.T + combiner.text_projection_layer.bias)
        i = F.relu(image @ combiner.image_projection_layer.weight.T + combiner.image_projection_layer.bias)
        raw = torch.cat([t, i], -1)
        hidden = F.relu(raw @ combiner.combiner_layer.weight.T + combiner.combiner_layer.bias)
        gate_layers = combiner.dynamic_scalar
        g_hidden = F.relu(raw @ gate_layers[0].weight.T + gate_layers[0].bias)
        gate = torch.sigmoid(g_hidden @ gate_layers[3].weight.T + gate_layers[3].bias)
        out = hidden @ combiner.output_layer.weight.T + combiner.output_layer.bias + gate * text + (1 - gate) * image
        expected = out / out.norm(dim=-1, keepdim=True)
        assert torch.allclose(combiner.combine_features(image, text), expected, atol=1e-5)
    assert combiner.logit_scale == 100


def test_the_combiner_keeps_the_official_state_dict_keys():
    keys = set(Combiner(8, 6, 10).state_dict())
    assert {
        "text_projection_layer.weight",
        "image_projection_layer.bias",
        "combiner_layer.weight",
        "output_layer.bias",
        "dynamic_scalar.0.weight",
        "dynamic_scalar.3.bias",
    } <= keys


def test_it_loads_the_official_pt_layout_with_an_openai_clip(tiny_clip4cir_folder, tmp_path, images, texts):
    ours = load_model("clip4cir", tiny_clip4cir_folder)
    clip_state = {k: v + 0.01 for k, v in ours.clip.state_dict().items()}  # a "fine-tuned" CLIP
    path = tmp_path / "combiner.pt"
    torch.save({"epoch": 3, "Combiner": ours.combiner.state_dict(), "CLIP": hf_to_openai(clip_state)}, path)
    official = load_model("clip4cir", path, config={"clip_folder": str(tiny_clip4cir_folder / "clip")})
    assert torch.equal(official.clip.text_projection.weight, clip_state["text_projection.weight"])
    with torch.no_grad():
        pixels = ours.preprocess(images)
        assert not torch.allclose(official.encode_queries(pixels, texts), ours.encode_queries(pixels, texts))


def test_openai_keymap_round_trips_and_names_unknown_keys(tiny_clip4cir_folder):
    clip = load_model("clip4cir", tiny_clip4cir_folder).clip
    state = clip.state_dict()
    openai = hf_to_openai(state)
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in openai
    assert openai["visual.proj"].shape == state["visual_projection.weight"].T.shape
    back = openai_to_hf(openai)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    with pytest.raises(CheckpointError, match="visual.mystery"):
        openai_to_hf({**openai, "visual.mystery": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="ResNet"):
        openai_to_hf({"visual.layer1.0.conv1.weight": torch.zeros(1)})


def test_a_combiner_with_wrong_shapes_is_named(tiny_clip4cir_folder, tmp_path):
    ours = load_model("clip4cir", tiny_clip4cir_folder)
    state = dict(ours.combiner.state_dict())
    state["output_layer.weight"] = torch.zeros(16, 7)
    path = tmp_path / "bad.pt"
    torch.save({"Combiner": state}, path)
    with pytest.raises(CheckpointError, match=r"output_layer.weight: checkpoint \(16, 7\) vs model \(16, 40\)"):
        load_model("clip4cir", path, config={"clip_folder": str(tiny_clip4cir_folder / "clip")})


def test_a_pt_without_combiner_key_or_clip_folder_is_refused(tiny_clip4cir_folder, tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"state": {}}, path)
    with pytest.raises(CheckpointError, match=r"expected CLIP4Cir's \{'epoch', 'Combiner'\}"):
        load_model("clip4cir", path, config={"clip_folder": str(tiny_clip4cir_folder / "clip")})
    ours = load_model("clip4cir", tiny_clip4cir_folder)
    torch.save({"Combiner": ours.combiner.state_dict()}, path)
    with pytest.raises(CheckpointError, match="no CLIP folder"):
        load_model("clip4cir", path)


def test_an_export_with_clip_weights_round_trips(tiny_clip4cir_folder, tmp_path, images, texts):
    ours = load_model("clip4cir", tiny_clip4cir_folder)
    folder = save_clip4cir(ours, tmp_path / "export")
    again = load_model("clip4cir", folder, config={"clip_folder": str(tiny_clip4cir_folder / "clip")})
    with torch.no_grad():
        pixels = ours.preprocess(images)
        assert torch.allclose(again.encode_queries(pixels, texts), ours.encode_queries(pixels, texts), atol=1e-6)
