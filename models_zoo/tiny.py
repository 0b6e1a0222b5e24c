"""Tiny random checkpoints for tests and smoke checks: no downloads, seeded, each built in well under 2 s.

Each ``make_tiny_*`` writes into ``folder`` (created if needed) and returns what ``load_model`` takes
as ``checkpoint`` for that family (a folder or a file). Pair them with ``TINY_CONFIGS[family]`` where a
family needs a config (clip4cir's own export carries its config in a JSON file, so none is needed).
"""

from __future__ import annotations

import json
from pathlib import Path

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
