import pytest
import torch
import torch.nn.functional as F

from models_zoo import CheckpointError, load_model
from models_zoo.blip2_cir.keymap import hf_to_lavis, lavis_to_hf, map_key


@pytest.fixture(scope="module")
def qure(tiny_blip2_folder):
    return load_model("blip2_cir", tiny_blip2_folder, variant="qure")


def test_gallery_is_one_unit_vector_per_query_token_and_queries_one_vector(qure, images, texts):
    with torch.no_grad():
        pixels = qure.preprocess(images)
        gallery, queries = qure.encode_images(pixels), qure.encode_queries(pixels, texts)
    assert gallery.shape == (3, 4, 16) and queries.shape == (3, 16)
    assert torch.allclose(gallery.norm(dim=-1), torch.ones(3, 4), atol=1e-5)
    assert torch.allclose(queries.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_the_score_is_the_max_over_query_tokens_of_the_dot_product(qure):
    torch.manual_seed(1)
    queries, gallery = torch.randn(2, 16), torch.randn(5, 4, 16)
    expected = torch.tensor([[max(float(q @ t) for t in image) for image in gallery] for q in queries])
    assert torch.allclose(qure.score(queries, gallery), expected, atol=1e-5)


def test_qure_query_is_the_mean_of_projected_query_positions(qure, images, texts):
    r = qure.retrieval
    with torch.no_grad():
        pixels = qure.preprocess(images)
        vision = r.vision_model(pixel_values=pixels).last_hidden_state
        tokens = qure.tokenizer(texts, padding="max_length", max_length=32, return_tensors="pt")
        query = r.query_tokens.expand(3, -1, -1)
        mask = torch.cat([torch.ones(3, 4, dtype=torch.long), tokens["attention_mask"]], dim=1)
        out = r.qformer(
            query_embeds=r.embeddings(input_ids=tokens["input_ids"], query_embeds=query),
            query_length=4,
            attention_mask=mask,
            encoder_hidden_states=vision,
        ).last_hidden_state
        expected = F.normalize(r.text_projection(out[:, :4]).mean(1), dim=-1)
        assert torch.allclose(qure.encode_queries(pixels, texts), expected, atol=1e-5)


def test_the_query_depends_on_both_the_text_and_the_reference_image(qure, images, texts):
    with torch.no_grad():
        pixels = qure.preprocess(images)
        base = qure.encode_queries(pixels[:1], texts[:1])
        other_text = qure.encode_queries(pixels[:1], texts[1:2])
        other_image = qure.encode_queries(pixels[1:2], texts[:1])
    assert not torch.allclose(base, other_text, atol=1e-4)
    assert not torch.allclose(base, other_image, atol=1e-4)


def test_sprc_differs_from_qure_and_reads_the_cls_position(tiny_blip2_folder, qure, images, texts):
    sprc = load_model("blip2_cir", tiny_blip2_folder, variant="sprc")
    with torch.no_grad():
        pixels = qure.preprocess(images)
        a, b = sprc.encode_queries(pixels, texts), qure.encode_queries(pixels, texts)
    assert a.shape == b.shape == (3, 16)
    assert not torch.allclose(a, b, atol=1e-3)


def test_hand_written_lavis_keys_map_to_hf_names():
    assert map_key("visual_encoder.cls_token") == "vision_model.embeddings.class_embedding"
    assert map_key("ln_vision.weight") == "vision_model.post_layernorm.weight"
    assert (
        map_key("visual_encoder.blocks.38.attn.proj.bias") == "vision_model.encoder.layers.38.self_attn.projection.bias"
    )
    assert (
        map_key("Qformer.bert.encoder.layer.10.crossattention.self.key.weight")
        == "qformer.encoder.layer.10.crossattention.attention.key.weight"
    )
    assert (
        map_key("Qformer.bert.encoder.layer.3.output_query.LayerNorm.bias")
        == "qformer.encoder.layer.3.output_query.LayerNorm.bias"
    )
    assert map_key("Qformer.bert.embeddings.LayerNorm.weight") == "qformer.layernorm.weight"
    assert map_key("Qformer.bert.embeddings.word_embeddings.weight") == "embeddings.word_embeddings.weight"
    assert map_key("vision_proj.weight") == "vision_projection.weight"
    assert map_key("text_proj.bias") == "text_projection.bias"
    assert map_key("query_tokens") == "query_tokens"
    assert map_key("Qformer.cls.predictions.bias") is None


def test_q_and_v_biases_merge_into_the_qkv_bias_with_a_zero_key_third():
    mapped = lavis_to_hf(
        {
            "visual_encoder.blocks.0.attn.q_bias": torch.ones(2),
            "visual_encoder.blocks.0.attn.v_bias": torch.full((2,), 3.0),
            "temp": torch.tensor(0.07),
            "prompt_tokens": torch.zeros(1, 4, 8),
        }
    )
    assert list(mapped) == ["vision_model.encoder.layers.0.self_attn.qkv.bias"]
    assert mapped["vision_model.encoder.layers.0.self_attn.qkv.bias"].tolist() == [1, 1, 0, 0, 3, 3]


def test_keymap_round_trips_a_synthetic_lavis_state_dict(qure):
    state = qure.retrieval.state_dict()
    lavis = hf_to_lavis(state)
    assert "Qformer.bert.encoder.layer.0.attention.self.query.weight" in lavis
    assert "visual_encoder.blocks.1.attn.v_bias" in lavis
    back = lavis_to_hf(lavis)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_unknown_lavis_keys_are_named():
    with pytest.raises(CheckpointError, match=r"1 keys .*visual_encoder.blocks.0.attn.relative_position_bias_table"):
        lavis_to_hf({"visual_encoder.blocks.0.attn.relative_position_bias_table": torch.zeros(1)})


def test_a_lavis_checkpoint_loads_and_encodes_like_the_hf_folder(tiny_blip2_lavis_file, qure, images, texts):
    lavis = load_model("blip2_cir", tiny_blip2_lavis_file, variant="qure")
    with torch.no_grad():
        pixels = qure.preprocess(images)
        assert torch.allclose(lavis.encode_images(pixels), qure.encode_images(pixels), atol=1e-5)
        assert torch.allclose(lavis.encode_queries(pixels, texts), qure.encode_queries(pixels, texts), atol=1e-5)


def test_a_lavis_checkpoint_with_a_wrong_shape_is_named(tiny_blip2_lavis_file, tmp_path):
    content = torch.load(tiny_blip2_lavis_file, weights_only=True)
    content["model"]["text_proj.weight"] = torch.zeros(16, 31)
    bad = tiny_blip2_lavis_file.parent / "bad.pth"
    torch.save(content, bad)
    with pytest.raises(CheckpointError, match=r"text_projection.weight: checkpoint \(16, 31\) vs model \(16, 32\)"):
        load_model("blip2_cir", bad)
