"""QuRe's released checkpoint layout (``Blip2QuRe`` with the ``clip_L`` ViT) against a forward pass written here.

The reference below is written from the published architecture (LAVIS ``clip_vit.py``, ``Qformer.py``,
QuRe's ``blip2_qure.py``: ``extract_target_features`` / ``extract_query_features_fiq`` and its max-over-query-
tokens score), with plain tensor operations on the raw state dict: no zoo module, no transformers model.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import BertTokenizer

from models_zoo import CheckpointError, load_model
from models_zoo.blip2_cir import load
from models_zoo.blip2_cir.synthetic import TINY_SIZES, make_tiny_qure_clip_l, qure_clip_l_state_dict

VIT_HEADS = TINY_SIZES.width // 64
QFORMER_HEADS = 12
TEXTS = ["is red with long sleeves", "has stripes and is shorter", "is blue and darker"]


# --- the reference --------------------------------------------------------------------------------------------


def _ln(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.weight"].float(), sd[f"{prefix}.bias"].float(), eps)


def _lin(x, sd, prefix):
    return x @ sd[f"{prefix}.weight"].float().T + sd[f"{prefix}.bias"].float()


def _heads_attention(q, k, v, heads, additive=None):
    b, lq, d = q.shape
    hd = d // heads
    q, k, v = (t.reshape(b, -1, heads, hd).transpose(1, 2) for t in (q, k, v))
    logits = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if additive is not None:
        logits = logits + additive
    return (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, d)


def reference_vision(sd, pixels):
    """CLIP ViT (conv1 without bias, class token, positions, ln_pre, QuickGELU blocks, no ln_post) + ln_vision."""
    conv = sd["visual_encoder.conv1.weight"].float()
    x = F.conv2d(pixels, conv, stride=conv.shape[-1])
    x = x.flatten(2).transpose(1, 2)
    cls = sd["visual_encoder.class_embedding"].float().expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + sd["visual_encoder.positional_embedding"].float()
    x = _ln(x, sd, "visual_encoder.ln_pre", 1e-5)
    i = 0
    while f"visual_encoder.transformer.resblocks.{i}.ln_1.weight" in sd:
        p = f"visual_encoder.transformer.resblocks.{i}"
        y = _ln(x, sd, f"{p}.ln_1", 1e-5)
        qkv = y @ sd[f"{p}.attn.in_proj_weight"].float().T + sd[f"{p}.attn.in_proj_bias"].float()
        x = x + _lin(_heads_attention(*qkv.chunk(3, dim=-1), VIT_HEADS), sd, f"{p}.attn.out_proj")
        y = _lin(_ln(x, sd, f"{p}.ln_2", 1e-5), sd, f"{p}.mlp.c_fc")
        x = x + _lin(y * torch.sigmoid(1.702 * y), sd, f"{p}.mlp.c_proj")
        i += 1
    return _ln(x, sd, "ln_vision", 1e-5)


def _bert_attention(sd, prefix, hidden, source, additive):
    q, k, v = (_lin(t, sd, f"{prefix}.self.{n}") for t, n in ((hidden, "query"), (source, "key"), (source, "value")))
    context = _heads_attention(q, k, v, QFORMER_HEADS, additive)
    return _ln(_lin(context, sd, f"{prefix}.output.dense") + hidden, sd, f"{prefix}.output.LayerNorm", 1e-12)


def _bert_ffn(sd, layer, suffix, hidden):
    inner = F.gelu(_lin(hidden, sd, f"{layer}.intermediate{suffix}.dense"))
    out = _lin(inner, sd, f"{layer}.output{suffix}.dense") + hidden
    return _ln(out, sd, f"{layer}.output{suffix}.LayerNorm", 1e-12)


def reference_qformer(sd, image, input_ids=None, text_mask=None):
    """LAVIS Q-Former: [query tokens; text] -> LayerNorm, each layer self-attention over all, cross-attention
    (every layer here) for the query part, query / text feed-forwards. Returns the query positions."""
    bert = "Qformer.bert"
    batch = image.shape[0]
    query = sd["query_tokens"].float().expand(batch, -1, -1)
    count = query.shape[1]
    x, mask = query, torch.ones(batch, count)
    if input_ids is not None:
        positions = torch.arange(input_ids.shape[1])
        text = sd[f"{bert}.embeddings.word_embeddings.weight"][input_ids] + sd[
            f"{bert}.embeddings.position_embeddings.weight"
        ][positions]
        x, mask = torch.cat([query, text], 1), torch.cat([mask, text_mask.float()], 1)
    x = _ln(x, sd, f"{bert}.embeddings.LayerNorm", 1e-12)
    additive = (1.0 - mask)[:, None, None, :] * -10000.0
    i = 0
    while f"{bert}.encoder.layer.{i}.attention.self.query.weight" in sd:
        layer = f"{bert}.encoder.layer.{i}"
        x = _bert_attention(sd, f"{layer}.attention", x, x, additive)
        q = x[:, :count]
        if f"{layer}.crossattention.self.query.weight" in sd:
            q = _bert_attention(sd, f"{layer}.crossattention", q, image, None)
        q = _bert_ffn(sd, layer, "_query", q)
        x = torch.cat([q, _bert_ffn(sd, layer, "", x[:, count:])], 1) if x.shape[1] > count else q
        i += 1
    return x[:, :count]


def reference_targets(sd, pixels):
    return F.normalize(_lin(reference_qformer(sd, reference_vision(sd, pixels)), sd, "vision_proj"), dim=-1)


def reference_queries(sd, pixels, texts, tokenizer):
    tokens = tokenizer(texts, padding="max_length", truncation=True, max_length=32, return_tensors="pt")
    fused = reference_qformer(sd, reference_vision(sd, pixels), tokens["input_ids"], tokens["attention_mask"])
    return F.normalize(_lin(fused, sd, "text_proj").mean(1), dim=-1)


def reference_scores(queries, targets):
    return torch.einsum("qd,ntd->qnt", queries, targets).amax(-1)


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_qure_clip_l(tmp_path_factory.mktemp("qure_clip_l"))


@pytest.fixture(scope="module")
def state(checkpoint):
    return torch.load(checkpoint, weights_only=True)


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_model("blip2_cir", checkpoint, variant="qure")


@pytest.fixture(scope="module")
def pixels(model):
    gen = torch.Generator().manual_seed(3)
    images = [
        Image.new("RGB", (40, 90), (200, 30, 30)),
        Image.new("RGB", (64, 64), (20, 120, 220)),
        Image.fromarray((torch.rand(50, 70, 3, generator=gen) * 255).byte().numpy()),
        Image.fromarray((torch.rand(33, 33, 3, generator=gen) * 255).byte().numpy()),
        Image.new("RGB", (90, 30), (240, 240, 20)),
    ]
    return model.preprocess(images)


# --- tests ------------------------------------------------------------------------------------------------------


def test_the_released_file_holds_fp16_vit_weights_and_loads_with_weights_only(state):
    assert state["visual_encoder.transformer.resblocks.0.attn.in_proj_weight"].dtype == torch.float16
    assert state["visual_encoder.ln_pre.weight"].dtype == torch.float32
    assert "Qformer.cls.predictions.bias" in state and "temp" in state


def test_the_architecture_is_read_from_the_state_dict(model):
    vision = model.retrieval.vision_model.visual_encoder
    assert len(vision.transformer.resblocks) == TINY_SIZES.layers
    assert vision.conv1.bias is None and vision.conv1.kernel_size == (TINY_SIZES.patch, TINY_SIZES.patch)
    assert vision.transformer.resblocks[0].attn.num_heads == TINY_SIZES.width // 64
    assert model.image_preprocessor.size == TINY_SIZES.image_size
    assert model.retrieval.vision_model.ln_vision.eps == 1e-5
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 on CPU


def test_target_embeddings_match_the_reference_forward(model, state, pixels):
    with torch.inference_mode():
        ours = model.encode_images(pixels)
    expected = reference_targets(state, pixels)
    assert ours.shape == (5, TINY_SIZES.query_tokens, TINY_SIZES.embed_dim)
    assert (ours - expected).abs().max().item() <= 1e-5


def test_query_embeddings_and_scores_match_the_reference_forward_with_identical_rankings(
    checkpoint, model, state, pixels
):
    tokenizer = BertTokenizer.from_pretrained(checkpoint.parent, do_lower_case=True)
    with torch.inference_mode():
        queries = model.encode_queries(pixels[:3], TEXTS)
        scores = model.score(queries, model.encode_images(pixels))
    expected_queries = reference_queries(state, pixels[:3], TEXTS, tokenizer)
    expected = reference_scores(expected_queries, reference_targets(state, pixels))
    assert (queries - expected_queries).abs().max().item() <= 1e-5
    assert (scores - expected).abs().max().item() <= 1e-5
    assert torch.equal(scores.argsort(dim=1, descending=True), expected.argsort(dim=1, descending=True))
    assert scores.std().item() > 1e-3  # the scores are not all alike, so the ranking check means something


def test_a_file_without_vit_weights_says_so(tmp_path):
    state = qure_clip_l_state_dict(seed=1, with_vit=False)
    path = tmp_path / "model.pth"
    torch.save(state, path)
    make_vocab = make_tiny_qure_clip_l(tmp_path / "v")  # for its vocab.txt
    (tmp_path / "vocab.txt").write_bytes((make_vocab.parent / "vocab.txt").read_bytes())
    with pytest.raises(CheckpointError, match=r"holds no ViT weights.*clip_vit_L\.pth") as caught:
        load_model("blip2_cir", path)
    assert "not a LAVIS BLIP-2 state dict" not in str(caught.value)


def test_the_vit_file_beside_or_passed_completes_the_checkpoint_exactly(tmp_path, model, pixels):
    path = make_tiny_qure_clip_l(tmp_path / "split", with_vit=False)
    assert (path.parent / "clip_vit_L.pth").is_file()
    beside = load_model("blip2_cir", path)
    elsewhere = tmp_path / "vit"
    elsewhere.mkdir()
    (path.parent / "clip_vit_L.pth").rename(elsewhere / "my_vit.pth")
    with pytest.raises(CheckpointError, match="holds no ViT weights"):
        load_model("blip2_cir", path)
    passed = load(path, vit_checkpoint=elsewhere / "my_vit.pth", vocab_file=path.parent / "vocab.txt")
    with torch.inference_mode():
        for other in (beside, passed):
            assert torch.equal(other.encode_images(pixels), model.encode_images(pixels))
            assert torch.equal(other.encode_queries(pixels[:3], TEXTS), model.encode_queries(pixels[:3], TEXTS))


def test_a_vocabulary_larger_than_the_word_embeddings_is_refused(tmp_path, checkpoint):
    big = tmp_path / "big_vocab.txt"
    big.write_text((checkpoint.parent / "vocab.txt").read_text() + "\n".join(f"w{i}" for i in range(200)) + "\n")
    with pytest.raises(CheckpointError, match=r"has 2\d\d tokens but the Q-Former's word embeddings only 96 rows"):
        load(checkpoint, vocab_file=big)


def test_a_vit_file_of_another_layout_is_refused_by_name(tmp_path):
    path = make_tiny_qure_clip_l(tmp_path / "split", with_vit=False)
    bad = tmp_path / "eva.pth"
    torch.save({"blocks.0.attn.qkv.weight": torch.zeros(3, 1)}, bad)
    with pytest.raises(CheckpointError, match=r"ViT file .*eva\.pth: not a clip_L"):
        load(path, vit_checkpoint=bad)


def test_an_unknown_vit_layout_is_refused_with_its_keys(tmp_path, state):
    odd = {k: v for k, v in state.items() if not k.startswith("visual_encoder.")}
    odd["visual_encoder.trunk.stem.weight"] = torch.zeros(2)
    path = tmp_path / "odd.pth"
    torch.save(odd, path)
    with pytest.raises(CheckpointError, match=r"neither LAVIS's EVA ViT-g .* nor clip_L .*visual_encoder\.trunk"):
        load_model("blip2_cir", path)


def test_a_missing_vit_block_key_is_named(tmp_path, state, checkpoint):
    broken = dict(state)
    del broken["visual_encoder.transformer.resblocks.1.mlp.c_fc.bias"]
    path = checkpoint.parent / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"missing keys: vision_model\.visual_encoder\.transformer\.resblocks\.1"):
        load_model("blip2_cir", path)


def test_a_state_dict_of_something_else_is_not_a_lavis_blip2(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a LAVIS BLIP-2 state dict"):
        load_model("blip2_cir", path)


def _embeddings(model, pixels):
    with torch.inference_mode():
        return model.encode_queries(pixels[:3], TEXTS), model.encode_images(pixels)


def _reference_embeddings(state, pixels, tokenizer):
    return reference_queries(state, pixels[:3], TEXTS, tokenizer), reference_targets(state, pixels)


def test_a_file_with_24_vit_blocks_gives_what_lavis_gives_with_its_23(tmp_path, pixels):
    from dataclasses import replace

    from models_zoo.blip2_cir.synthetic import qure_clip_l_state_dict as full_state

    sizes = replace(TINY_SIZES, layers=24)
    path = make_tiny_qure_clip_l(tmp_path / "24", sizes=sizes)
    state = full_state(sizes, seed=0)
    # LAVIS create_clip_vit_L builds VisionTransformer(layers=23) and loads the file with strict=False.
    lavis = {k: v for k, v in state.items() if not k.startswith("visual_encoder.transformer.resblocks.23.")}
    tokenizer = BertTokenizer.from_pretrained(path.parent, do_lower_case=True)
    model = load_model("blip2_cir", path)
    assert len(model.retrieval.vision_model.visual_encoder.transformer.resblocks) == 23
    queries, targets = _embeddings(model, pixels)
    expected_queries, expected_targets = _reference_embeddings(lavis, pixels, tokenizer)
    assert (queries - expected_queries).abs().max().item() <= 1e-5
    assert (targets - expected_targets).abs().max().item() <= 1e-5
    scores, expected = model.score(queries, targets), reference_scores(expected_queries, expected_targets)
    assert torch.equal(scores.argsort(dim=1, descending=True), expected.argsort(dim=1, descending=True))
    all_blocks, _ = _reference_embeddings(state, pixels, tokenizer)
    assert (queries - all_blocks).abs().max().item() > 1e-5  # the 24th block would show


# LAVIS eva_vit.convert_weights_to_fp16: nn.Conv1d/Conv2d/Linear weights and biases (the attention's in_proj is
# commented out there), applied by create_clip_vit_L when vit_precision is fp16, on every device.
_LAVIS_FP16_MODULES = ("conv1", "attn.out_proj", "mlp.c_fc", "mlp.c_proj")


def _lavis_fp16(key: str) -> bool:
    module, _, name = key.rpartition(".")
    return key.startswith("visual_encoder.") and name in ("weight", "bias") and module.endswith(_LAVIS_FP16_MODULES)


def test_an_fp32_vit_file_is_rounded_to_fp16_as_lavis_does(tmp_path, pixels):
    from models_zoo.blip2_cir.synthetic import qure_clip_l_vit_state_dict

    path = make_tiny_qure_clip_l(tmp_path / "split", with_vit=False)
    vit = qure_clip_l_vit_state_dict(TINY_SIZES, generator=torch.Generator().manual_seed(7), fp16=False)
    assert vit["conv1.weight"].dtype == torch.float32
    torch.save(vit, path.parent / "clip_vit_L.pth")
    fine_tuned = torch.load(path, weights_only=True)
    stored = {**fine_tuned, **{f"visual_encoder.{k}": v for k, v in vit.items()}}
    lavis = {k: v.half().float() if _lavis_fp16(k) else v for k, v in stored.items()}
    assert sum(_lavis_fp16(k) for k in stored) == 1 + 6 * TINY_SIZES.layers
    tokenizer = BertTokenizer.from_pretrained(path.parent, do_lower_case=True)
    model = load_model("blip2_cir", path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    queries, targets = _embeddings(model, pixels)
    expected_queries, expected_targets = _reference_embeddings(lavis, pixels, tokenizer)
    assert (queries - expected_queries).abs().max().item() <= 1e-5
    assert (targets - expected_targets).abs().max().item() <= 1e-5
    unrounded, _ = _reference_embeddings(stored, pixels, tokenizer)
    assert (queries - unrounded).abs().max().item() > 1e-5  # the rounding shows
    kept = load(path, config={"vit_precision": "fp32"}, vocab_file=path.parent / "vocab.txt")
    assert (_embeddings(kept, pixels)[0] - unrounded).abs().max().item() <= 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_vit_runs_fp16_as_released_and_rankings_match_fp32(checkpoint, model, pixels):
    gpu = load_model("blip2_cir", checkpoint, device="cuda")
    vit = gpu.retrieval.vision_model.visual_encoder
    assert vit.conv1.weight.dtype == torch.float16 and vit.ln_pre.weight.dtype == torch.float32
    assert gpu.retrieval.query_tokens.dtype == torch.float32
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):  # the worker's autocast
        scores = gpu.score(gpu.encode_queries(pixels[:3].cuda(), TEXTS), gpu.encode_images(pixels.cuda())).cpu()
    with torch.inference_mode():
        expected = model.score(model.encode_queries(pixels[:3], TEXTS), model.encode_images(pixels))
    assert (scores.float() - expected).abs().max().item() < 5e-3
