"""CLIP4Cir's released checkpoints (OpenAI CLIP + Combiner) load without a Hugging Face folder and score exactly
as the official code: tiny random checkpoints against an independent reference (``openai_clip_reference``)."""

import shutil

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from models_zoo import CheckpointError, load_model
from models_zoo.clip4cir.bpe import BPE_FILE_NAME, ClipBpeTokenizer
from models_zoo.clip4cir.model import OpenAIClip4Cir
from models_zoo.clip4cir.official import load_official
from models_zoo.tiny import write_clip_bpe
from tests.models_zoo import openai_clip_reference as ref

TEXTS = [
    "Is red with long sleeves and has a collar",
    "has stripes and is shorter",
    "Is darker, lighter   pattern & a dress!",
    "is blue and darker and " + "longer " * 80,  # longer than the context: truncated, still ends with EOT
]
TOKENIZER_TEXTS = TEXTS + [
    "the shirt's collar isn't   long",
    "&amp;lt;b&amp;gt; 100% cotton — déjà vu 2x",
    "  MORE   stripes\tand\nless  sleeves ",
    "ｆｕｌｌ-width and 😀 emoji",
]


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / BPE_FILE_NAME
    write_clip_bpe(path)
    return path


@pytest.fixture
def images():
    return [
        Image.new("RGB", (100, 300), (200, 30, 30)),
        Image.new("RGB", (64, 64), (20, 120, 220)),
        Image.effect_noise((90, 60), 40).convert("RGB"),
        Image.effect_noise((50, 70), 80).convert("RGB"),
    ]


CLIPS = {
    "RN50x4-like": dict(
        embed=32, resolution=64, layers=(4, 6, 10, 6), width=8, patch=None, text_width=128, text_layers=2
    ),
    "ViT": dict(embed=32, resolution=32, layers=2, width=128, patch=8, text_width=128, text_layers=2),
}


def _release(folder, kind, bpe_file, *, combined=False):
    """CLIP4Cir's files as its training scripts save them; returns (combiner path, CLIP state, Combiner state)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = len(ClipBpeTokenizer.from_file(bpe_file))
    clip = ref.random_state(ref.clip_shapes(**CLIPS[kind], vocab=vocab), seed=5)
    combiner = ref.combiner_state(32, 24, 40)
    shutil.copy(bpe_file, folder / BPE_FILE_NAME)
    if combined:
        torch.save({"epoch": 2, "Combiner": combiner, "CLIP": clip}, folder / "model.pt")
        return folder / "model.pt", clip, combiner
    torch.save({"epoch": 2, "CLIP": clip}, folder / "fiq_clip_fullft.pt")
    torch.save({"epoch": 2, "Combiner": combiner}, folder / "fiq_comb_fullft.pt")
    return folder / "fiq_comb_fullft.pt", clip, combiner


def test_the_tokenizer_gives_openai_clips_ids(bpe_file):
    ours = ClipBpeTokenizer.from_file(bpe_file)
    reference = ref.SimpleTokenizer(bpe_file)
    assert (ours.sot, ours.eot, len(ours)) == (len(ours) - 2, len(ours) - 1, len(reference.encoder))
    expected = reference.tokenize(TOKENIZER_TEXTS)
    assert torch.equal(ours.encode(TOKENIZER_TEXTS), expected)
    assert expected[3, -1] == ours.eot and (expected[0] != 0).sum() > 5  # truncated; merges used


@pytest.mark.parametrize("kind", list(CLIPS))
def test_released_two_file_checkpoints_score_as_the_official_code(kind, tmp_path, bpe_file, images):
    combiner_path, clip, combiner = _release(tmp_path / "release", kind, bpe_file)
    model = load_model(
        "clip4cir", combiner_path, config={"clip_checkpoint": str(tmp_path / "release" / "fiq_clip_fullft.pt")}
    )
    assert isinstance(model, OpenAIClip4Cir) and model.image_preprocessor.size == CLIPS[kind]["resolution"]
    pixels = model.preprocess(images)
    with torch.no_grad():
        queries, gallery = model.encode_queries(pixels, TEXTS), model.encode_images(pixels)
        scores = model.score(queries, gallery)
        # validate.py: combine raw features, normalise the index features, rank by 1 - cosine.
        tokens = ref.SimpleTokenizer(bpe_file).tokenize(TEXTS)
        index = ref.encode_image(clip, pixels)
        expected_queries = F.normalize(ref.combine(combiner, index, ref.encode_text(clip, tokens)), dim=-1)
        expected_gallery = F.normalize(index, dim=-1)
        expected_scores = expected_queries @ expected_gallery.T
    assert (queries - expected_queries).abs().max() <= 1e-5
    assert (gallery - expected_gallery).abs().max() <= 1e-5
    assert (scores - expected_scores).abs().max() <= 1e-5
    assert torch.equal(scores.argsort(dim=-1, descending=True), expected_scores.argsort(dim=-1, descending=True))
    assert expected_scores.std() > 1e-3  # the images and texts are told apart


def test_one_dict_a_folder_and_the_explicit_loader_give_the_same_model(tmp_path, bpe_file, images):
    two_files, _, _ = _release(tmp_path / "two", "RN50x4-like", bpe_file)
    one_file, _, _ = _release(tmp_path / "one", "RN50x4-like", bpe_file, combined=True)
    (tmp_path / "two" / BPE_FILE_NAME).rename(tmp_path / "vocab.txt.gz")  # not beside: passed explicitly
    # Pretrained (not fine-tuned) CLIP weights as a flat OpenAI state dict in safetensors, beside the Combiner.
    from safetensors.torch import save_file

    flat = tmp_path / "flat"
    flat.mkdir()
    save_file(
        torch.load(tmp_path / "two" / "fiq_clip_fullft.pt", weights_only=True)["CLIP"], flat / "RN50x4.safetensors"
    )
    shutil.copy(two_files, flat / "combiner.pt")
    shutil.copy(bpe_file, flat / BPE_FILE_NAME)
    models = [
        load_model("clip4cir", one_file),
        load_model("clip4cir", tmp_path / "one"),
        load_model(
            "clip4cir",
            two_files,
            config={
                "clip_checkpoint": str(tmp_path / "two" / "fiq_clip_fullft.pt"),
                "bpe_vocab": str(tmp_path / "vocab.txt.gz"),
            },
        ),
        load_official(
            combiner=two_files, clip=tmp_path / "two" / "fiq_clip_fullft.pt", bpe_vocab=tmp_path / "vocab.txt.gz"
        ),
        load_model("clip4cir", flat),
        load_model("clip4cir", flat / "combiner.pt", config={"clip_checkpoint": str(flat / "RN50x4.safetensors")}),
    ]
    pixels = models[0].preprocess(images)
    with torch.no_grad():
        outputs = [m.encode_queries(pixels, TEXTS) for m in models]
    assert all(torch.equal(outputs[0], out) for out in outputs[1:])


def test_workers_find_the_bpe_file_the_admin_names_when_the_checkpoint_lacks_it(tmp_path, bpe_file, monkeypatch):
    combiner_path, _, _ = _release(tmp_path / "r", "ViT", bpe_file, combined=True)
    (tmp_path / "r" / BPE_FILE_NAME).unlink()
    monkeypatch.delenv("HPBENCH_CLIP_BPE_VOCAB", raising=False)
    with pytest.raises(CheckpointError, match="HPBENCH_CLIP_BPE_VOCAB unset"):
        load_model("clip4cir", combiner_path)
    monkeypatch.setenv("HPBENCH_CLIP_BPE_VOCAB", str(tmp_path / "nowhere.txt.gz"))
    with pytest.raises(CheckpointError, match=r"nowhere.txt.gz \(HPBENCH_CLIP_BPE_VOCAB\) does not exist"):
        load_model("clip4cir", combiner_path)
    monkeypatch.setenv("HPBENCH_CLIP_BPE_VOCAB", str(bpe_file))
    assert load_model("clip4cir", combiner_path).tokenizer.source == str(bpe_file)


def test_bf16_autocast_does_not_change_the_fp32_results(tmp_path, bpe_file, images):
    combiner_path, _, _ = _release(tmp_path, "ViT", bpe_file, combined=True)
    model = load_model("clip4cir", combiner_path)
    pixels = model.preprocess(images)
    with torch.no_grad():
        plain = model.encode_queries(pixels, TEXTS)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model.encode_queries(pixels, TEXTS)
    assert autocast.dtype == torch.float32 and torch.equal(plain, autocast)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_what_is_missing_or_mismatched_is_named(tmp_path, bpe_file):
    combiner_path, clip, combiner = _release(tmp_path / "r", "ViT", bpe_file)
    with pytest.raises(CheckpointError, match="holds no CLIP weights and no CLIP folder was given"):
        load_model("clip4cir", combiner_path)
    clip_path = str(tmp_path / "r" / "fiq_clip_fullft.pt")
    (tmp_path / "r" / BPE_FILE_NAME).unlink()
    with pytest.raises(CheckpointError, match=f"needs its BPE vocabulary .*no {BPE_FILE_NAME} in"):
        load_model("clip4cir", combiner_path, config={"clip_checkpoint": clip_path})
    other = tmp_path / "other.txt.gz"
    write_clip_bpe(other, ["red"])
    with pytest.raises(CheckpointError, match=r"vocabulary of \d+ tokens but the BPE file .*other.txt.gz gives 516"):
        load_model("clip4cir", combiner_path, config={"clip_checkpoint": clip_path, "bpe_vocab": str(other)})
    torch.save({"epoch": 1, "Combiner": ref.combiner_state(16, 24, 40)}, tmp_path / "small.pt")
    with pytest.raises(CheckpointError, match="Combiner expects CLIP features of size 16 but this CLIP gives 32"):
        load_official(combiner=tmp_path / "small.pt", clip=clip_path, bpe_vocab=bpe_file)
    with pytest.raises(CheckpointError, match=r"small.pt \(the CLIP file.*holds a 'Combiner' state dict, not a 'CLIP'"):
        load_official(combiner=combiner_path, clip=tmp_path / "small.pt", bpe_vocab=bpe_file)
    torch.jit.script(torch.nn.Linear(2, 2)).save(tmp_path / "RN50x4.pt")  # OpenAI's download format
    with pytest.raises(CheckpointError, match=r"RN50x4.pt: a TorchScript archive .* torch.save\(torch.jit.load"):
        load_official(combiner=combiner_path, clip=tmp_path / "RN50x4.pt", bpe_vocab=bpe_file)


def test_a_folder_of_released_files_must_hold_one_combiner(tmp_path, bpe_file):
    _release(tmp_path / "r", "ViT", bpe_file)
    shutil.copy(tmp_path / "r" / "fiq_comb_fullft.pt", tmp_path / "r" / "combiner_9.pt")
    with pytest.raises(CheckpointError, match="both combiner_9.pt and fiq_comb_fullft.pt hold a Combiner"):
        load_model("clip4cir", tmp_path / "r")
    (tmp_path / "r" / "combiner_9.pt").unlink()
    (tmp_path / "r" / "fiq_comb_fullft.pt").unlink()
    with pytest.raises(CheckpointError, match=r"no file holds a 'Combiner' state dict \(fiq_clip_fullft.pt\)"):
        load_model("clip4cir", tmp_path / "r")
    torch.save({"weights": [1, 2]}, tmp_path / "r" / "notes.pt")
    with pytest.raises(CheckpointError, match=r"notes.pt: expected CLIP4Cir's \{'epoch', 'Combiner'\}"):
        load_model("clip4cir", tmp_path / "r")


# --- precision per device and error messages (issue 21 item 10) ---------------------------------------------------

# OpenAI's clip/model.py ``convert_weights``, by state-dict key: nn.Conv1d/Conv2d/Linear weights and biases,
# nn.MultiheadAttention input projections and biases, and the ``text_projection`` / ``proj`` attributes.
_CONVERTED_MODULES = ("conv1", "conv2", "conv3", "downsample.0", "q_proj", "k_proj", "v_proj", "c_proj", "out_proj",
                      "c_fc")


def _converted_by_openai(key: str) -> bool:
    module, _, name = key.rpartition(".")
    if name in ("in_proj_weight", "in_proj_bias") or key in ("text_projection", "visual.proj"):
        return True
    return name in ("weight", "bias") and module.endswith(_CONVERTED_MODULES)


def _official_cuda_state(clip: dict) -> dict:
    """What CLIP4Cir's validate.py holds on CUDA: the fine-tuned CLIP copied into fp16 tensors, then .float()."""
    return {k: v.half().float() if _converted_by_openai(k) else v for k, v in clip.items()}


def _expected_queries(clip, combiner, pixels, bpe_file):
    tokens = ref.SimpleTokenizer(bpe_file).tokenize(TEXTS)
    index = ref.encode_image(clip, pixels)
    return F.normalize(ref.combine(combiner, index, ref.encode_text(clip, tokens)), dim=-1), F.normalize(index, dim=-1)


def test_the_weight_dtype_follows_the_official_load_on_each_device():
    from models_zoo.clip4cir.openai_clip import official_weight_dtype

    assert official_weight_dtype("cuda") == torch.float16 and official_weight_dtype("cuda:1") == torch.float16
    assert official_weight_dtype("cpu") == torch.float32 and official_weight_dtype(torch.device("cpu")) == torch.float32


@pytest.mark.parametrize("kind", list(CLIPS))
def test_on_cuda_the_fine_tuned_clip_is_rounded_to_fp16_as_the_official_load_and_kept_on_cpu(
    kind, tmp_path, bpe_file, images, monkeypatch
):
    from models_zoo.clip4cir import openai_clip

    combiner_path, clip, combiner = _release(tmp_path / "release", kind, bpe_file)
    config = {"clip_checkpoint": str(tmp_path / "release" / "fiq_clip_fullft.pt")}
    cpu = load_model("clip4cir", combiner_path, config=config)
    # The CUDA policy, exercised on CPU: moving the model (as load_model(device="cuda") does) applies it.
    monkeypatch.setattr(openai_clip, "official_weight_dtype", lambda device: torch.float16)
    cuda_policy = load_model("clip4cir", combiner_path, config=config)
    pixels = cpu.preprocess(images)
    rounded = _official_cuda_state(clip)
    assert {p.dtype for p in cuda_policy.parameters()} == {torch.float32}
    assert any(not torch.equal(rounded[k], clip[k]) for k in rounded)
    with torch.no_grad():
        for model, state in ((cpu, clip), (cuda_policy, rounded)):
            queries, gallery = model.encode_queries(pixels, TEXTS), model.encode_images(pixels)
            expected_queries, expected_gallery = _expected_queries(state, combiner, pixels, bpe_file)
            assert (queries - expected_queries).abs().max() <= 1e-5
            assert (gallery - expected_gallery).abs().max() <= 1e-5
            scores, expected = model.score(queries, gallery), expected_queries @ expected_gallery.T
            assert torch.equal(scores.argsort(dim=-1, descending=True), expected.argsort(dim=-1, descending=True))
        other, _ = _expected_queries(clip, combiner, pixels, bpe_file)
        assert (cuda_policy.encode_queries(pixels, TEXTS) - other).abs().max() > 1e-5  # the rounding shows


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_a_real_gpu_the_weights_are_those_of_the_official_cuda_load(tmp_path, bpe_file):
    combiner_path, clip, _ = _release(tmp_path / "release", "RN50x4-like", bpe_file)
    model = load_model("clip4cir", combiner_path, device="cuda",
                       config={"clip_checkpoint": str(tmp_path / "release" / "fiq_clip_fullft.pt")})
    ours = {k: v.cpu() for k, v in model.clip.state_dict().items()}
    assert all(torch.equal(ours[k], v.float()) for k, v in _official_cuda_state(clip).items() if k in ours)


def test_a_data_parallel_clip_loads_as_the_plain_one(tmp_path, bpe_file, images):
    combiner_path, clip, _ = _release(tmp_path / "r", "ViT", bpe_file)
    torch.save({"epoch": 2, "CLIP": {f"module.{k}": v for k, v in clip.items()}}, tmp_path / "r" / "dp.pt")
    plain_path = str(tmp_path / "r" / "fiq_clip_fullft.pt")
    plain = load_model("clip4cir", combiner_path, config={"clip_checkpoint": plain_path})
    wrapped = load_model("clip4cir", combiner_path, config={"clip_checkpoint": str(tmp_path / "r" / "dp.pt")})
    pixels = plain.preprocess(images)
    with torch.no_grad():
        assert torch.equal(plain.encode_queries(pixels, TEXTS), wrapped.encode_queries(pixels, TEXTS))


def test_swapped_files_and_torchscript_are_named_with_the_fix(tmp_path, bpe_file):
    combiner_path, _, _ = _release(tmp_path / "r", "ViT", bpe_file)
    clip_path = tmp_path / "r" / "fiq_clip_fullft.pt"
    with pytest.raises(CheckpointError, match=r"fiq_clip_fullft.pt: holds a CLIP state dict, not the 'Combiner'.*"
                                              r"the two files are swapped"):
        load_model("clip4cir", clip_path, config={"clip_checkpoint": str(combiner_path)})
    with pytest.raises(CheckpointError, match=r"fiq_comb_fullft.pt \(the CLIP file.*holds a 'Combiner'"):
        load_model("clip4cir", combiner_path, config={"clip_checkpoint": str(combiner_path)})
    scripted = tmp_path / "RN50x4.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(scripted)
    with pytest.raises(CheckpointError, match=r"RN50x4.pt: a TorchScript archive.*torch.save\(torch.jit.load") as got:
        load_model("clip4cir", combiner_path, config={"clip_checkpoint": str(scripted)})
    assert "truncated or corrupt" not in str(got.value)
