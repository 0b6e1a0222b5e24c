import pytest
import torch

from models_zoo import CheckpointError, load_model
from models_zoo.demo import DemoCIR, DemoConfig, build_vocab, save_demo_model


def test_vocab_starts_with_pad_and_unk_then_frequent_words():
    vocab = build_vocab(["is red", "Is blue!", "has stripes"])
    assert vocab[:3] == ["<pad>", "<unk>", "is"]
    assert set(vocab[3:]) == {"red", "blue", "has", "stripes"}


def test_it_loads_from_a_folder_and_gives_unit_vectors(tiny_demo_folder, images, texts):
    model = load_model("demo", tiny_demo_folder)
    with torch.no_grad():
        pixels = model.preprocess(images)
        q, g = model.encode_queries(pixels, texts), model.encode_images(pixels)
    assert pixels.shape == (3, 3, 40, 32)
    assert q.shape == (3, 32) and g.shape == (3, 32)
    assert torch.allclose(q.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_unknown_words_map_to_unk(tiny_demo_folder):
    model = load_model("demo", tiny_demo_folder)
    ids, offsets = model.text_ids(["is zebra", ""])
    assert ids.tolist() == [model.word_index["is"], 1, 0] and offsets.tolist() == [0, 2]


def test_gradients_flow_through_the_interface():
    model = DemoCIR(
        DemoConfig(
            vocab=build_vocab(["is red"]), image_size=(40, 32), channels=(8,), embed_dim=16, word_dim=8, hidden_dim=16
        )
    ).train()
    pixels = torch.randn(2, 3, 40, 32)
    loss = (model.encode_queries(pixels, ["is red", "red"]) * model.encode_images(pixels)).sum()
    loss.backward()
    assert model.image_encoder.head.weight.grad is not None
    assert model.text_encoder.embedding.weight.grad is not None
    assert not any("logit_scale" in name for name, _ in model.named_parameters())


def test_save_and_load_round_trip(tmp_path, images, texts):
    model = DemoCIR(DemoConfig(vocab=build_vocab(texts))).eval()
    again = load_model("demo", save_demo_model(model, tmp_path / "m"))
    assert again.config.vocab == model.config.vocab
    with torch.no_grad():
        pixels = model.preprocess(images)
        assert torch.allclose(again.encode_queries(pixels, texts), model.encode_queries(pixels, texts), atol=1e-6)


def test_a_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="expected a folder with config.json and model.safetensors"):
        load_model("demo", tmp_path)
