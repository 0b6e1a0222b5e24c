"""Tiny random checkpoints for tests and smoke checks: no downloads, seeded, each built in well under 2 s.

Each ``make_tiny_*`` writes into ``folder`` (created if needed) and returns what ``load_model`` takes
as ``checkpoint`` for that family (a folder or a file). Pair them with ``TINY_CONFIGS[family]`` where a
family needs a config (clip4cir's own export carries its config in a JSON file, so none is needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

TINY_SEED = 0


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE tokenizers (GPT-2, CLIP) use for the bytes 0..255."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return [mapping[b] for b in range(256)]


def _write_clip_tokenizer(folder: Path) -> dict[str, int]:
    """Byte-level CLIP vocabulary (256 byte symbols, their ``</w>`` forms, start/end tokens), no merges."""
    symbols = list(_byte_symbols())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "model_max_length": 77,
            }
        ),
        encoding="utf-8",
    )
    return vocab


def make_tiny_clip(folder: str | Path, *, seed: int = TINY_SEED) -> Path:
    """A random CLIP (hidden 32, 2 layers, image 32x32, projection 16) with an offline byte-level
    tokenizer, saved as a Hugging Face folder. Returns the folder."""
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _write_clip_tokenizer(folder)
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    return folder


def make_tiny_clip4cir(folder: str | Path, *, seed: int = TINY_SEED) -> Path:
    """A tiny CLIP (in ``folder/clip``) plus a random Combiner (projection 24, hidden 40) exported in our
    layout (``clip4cir.json`` + ``model.safetensors``). Returns ``folder``."""
    from models_zoo.clip4cir.loading import save_clip4cir
    from models_zoo.clip4cir.model import Clip4Cir, Combiner
    from models_zoo.clip_common import load_clip_folder

    folder = Path(folder)
    clip_folder = make_tiny_clip(folder / "clip", seed=seed)
    clip, tokenizer = load_clip_folder(clip_folder)
    torch.manual_seed(seed + 1)
    combiner = Combiner(clip.config.projection_dim, 24, 40)
    save_clip4cir(Clip4Cir(clip, tokenizer, combiner), folder, clip_folder=clip_folder)
    return folder


TINY_BERT_WORDS = (
    "is has and with the a an of more less longer shorter red blue green black white stripes sleeves "
    "long short darker lighter pattern dress shirt collar"
).split()


def _write_bert_vocab(folder: Path) -> int:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"] + list(TINY_BERT_WORDS)
    tokens += [chr(c) for c in range(ord("a"), ord("z") + 1)] + [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)]
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return len(tokens)


def tiny_blip2_config(vocab_size: int = 64) -> object:
    """The tiny ``Blip2Config`` used by ``make_tiny_blip2`` (ViT hidden 32, image 32, Q-Former hidden 32,
    4 heads each, 2 layers, cross-attention every layer, 4 query tokens, embedding 16)."""
    from transformers import Blip2Config

    return Blip2Config(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            initializer_range=0.2,  # the default (1e-10) makes every image look alike
        ),
        qformer_config=dict(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            encoder_hidden_size=32,
            cross_attention_frequency=1,
            use_qformer_text_input=True,
            max_position_embeddings=40,
            pad_token_id=0,
            initializer_range=0.2,
        ),
        text_config=dict(
            model_type="opt", vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, ffn_dim=8
        ),
        num_query_tokens=4,
        image_text_hidden_size=16,
    )


def make_tiny_blip2(folder: str | Path, *, seed: int = TINY_SEED) -> Path:
    """A random tiny BLIP-2 retrieval model saved as a Hugging Face folder with a BERT ``vocab.txt``.

    The ViT attention's key-bias third is zeroed, as in EVA (so the LAVIS round trip is exact). Returns the folder.
    """
    from transformers import Blip2ForImageTextRetrieval

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = _write_bert_vocab(folder)
    torch.manual_seed(seed)
    model = Blip2ForImageTextRetrieval(tiny_blip2_config(vocab_size))
    with torch.no_grad():
        model.query_tokens.normal_(0, 0.5)
        for layer in model.vision_model.encoder.layers:
            bias = layer.self_attn.qkv.bias
            bias.normal_(0, 0.1)
            third = bias.shape[0] // 3
            bias[third : 2 * third] = 0
    model.save_pretrained(folder)
    return folder


def make_tiny_blip2_lavis(folder: str | Path, *, seed: int = TINY_SEED) -> Path:
    """The tiny BLIP-2 of ``make_tiny_blip2`` saved as a LAVIS-layout checkpoint ``folder/qure_tiny.pth``
    (``{"model": state_dict}`` with ``temp`` and ``Qformer.cls.*`` extras, as QuRe saves), with
    ``vocab.txt`` and ``blip2_cir.json`` (head counts) beside it. Returns the ``.pth`` path."""
    from transformers import Blip2ForImageTextRetrieval

    from models_zoo.blip2_cir.keymap import hf_to_lavis

    folder = Path(folder)
    hf_folder = make_tiny_blip2(folder / "hf", seed=seed)
    model = Blip2ForImageTextRetrieval.from_pretrained(hf_folder, local_files_only=True)
    lavis = hf_to_lavis(model.state_dict())
    lavis["temp"] = torch.tensor(0.07)
    lavis["Qformer.cls.predictions.bias"] = torch.zeros(8)
    (folder / "vocab.txt").write_bytes((hf_folder / "vocab.txt").read_bytes())
    (folder / "blip2_cir.json").write_text(
        json.dumps({"vision_num_attention_heads": 4, "qformer_num_attention_heads": 4}), encoding="utf-8"
    )
    path = folder / "qure_tiny.pth"
    torch.save({"model": lavis, "epoch": 1}, path)
    return path


TINY_DEMO_TEXTS = ("is red with long sleeves", "has stripes and is shorter", "is blue and darker")


def make_tiny_demo(folder: str | Path, *, seed: int = TINY_SEED) -> Path:
    """A random demo model (channels 8/16, 32-d embeddings, vocabulary of ``TINY_DEMO_TEXTS``) saved as a
    demo folder. Returns the folder."""
    from models_zoo.demo.loading import save_demo_model
    from models_zoo.demo.model import DemoCIR, DemoConfig, build_vocab

    torch.manual_seed(seed)
    config = DemoConfig(
        vocab=build_vocab(TINY_DEMO_TEXTS),
        image_size=(40, 32),
        channels=(8, 16),
        embed_dim=32,
        word_dim=16,
        hidden_dim=32,
    )
    return save_demo_model(DemoCIR(config), folder)


TINY_CLIP_WORDS = TINY_BERT_WORDS


def write_clip_bpe(path: str | Path, words: tuple[str, ...] | list[str] = TINY_CLIP_WORDS) -> int:
    """A gzip BPE file in OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` format whose merges spell ``words`` (left
    to right, the last letter with ``</w>``). Returns the vocabulary size it gives (512 + merges + 2)."""
    import gzip

    merges: list[str] = []
    seen: set[str] = set()
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            if current + piece not in seen:
                seen.add(current + piece)
                merges.append(f"{current} {piece}")
            current += piece
    Path(path).write_bytes(gzip.compress(("#version: 0.2\n" + "\n".join(merges) + "\n").encode("utf-8")))
    return 512 + len(merges) + 2


TINY_OPENAI_CLIPS: dict[str, dict[str, Any]] = {
    # RN50x4's stages (4, 6, 10, 6) at width 8 (attention pool over 256 channels, 4 heads), 64 px.
    "RN50x4": dict(
        embed_dim=32, image_resolution=64, vision_layers=(4, 6, 10, 6), vision_width=8, vision_patch_size=None
    ),
    # A ViT with patch 8 on 32 px, width 128 (2 heads), 2 blocks.
    "ViT": dict(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=128, vision_patch_size=8),
}


def make_tiny_clip4cir_openai(folder: str | Path, *, backbone: str = "RN50x4", seed: int = TINY_SEED) -> Path:
    """CLIP4Cir's released layout at tiny size, in ``folder``: ``clip.pt`` (``{"epoch", "CLIP"}``, an OpenAI-layout
    CLIP, ``backbone`` one of ``TINY_OPENAI_CLIPS``; text width 128, 2 blocks), ``combiner.pt``
    (``{"epoch", "Combiner"}``, projection 24, hidden 40) and ``bpe_simple_vocab_16e6.txt.gz`` (a tiny BPE).
    Random weights, BatchNorm statistics included. Returns ``folder``."""
    from models_zoo.clip4cir.bpe import BPE_FILE_NAME
    from models_zoo.clip4cir.model import Combiner
    from models_zoo.clip4cir.openai_clip import ClipArchitecture, OpenAIClip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_clip_bpe(folder / BPE_FILE_NAME)
    arch = ClipArchitecture(
        **TINY_OPENAI_CLIPS[backbone],
        context_length=77,
        vocab_size=vocab_size,
        transformer_width=128,
        transformer_heads=2,
        transformer_layers=2,
    )
    generator = torch.Generator().manual_seed(seed)
    state = OpenAIClip(arch).state_dict()
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("running_var") or (key.endswith("weight") and value.dim() == 1):  # norms: around 1
            value.copy_(1 + 0.2 * torch.rand(value.shape, generator=generator))
        elif value.dim() >= 2:
            value.copy_(torch.randn(value.shape, generator=generator) / value[0].numel() ** 0.5)
        else:
            value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
    torch.save({"epoch": 3, "CLIP": state}, folder / "clip.pt")
    torch.manual_seed(seed + 1)
    torch.save({"epoch": 3, "Combiner": Combiner(arch.embed_dim, 24, 40).state_dict()}, folder / "combiner.pt")
    return folder
