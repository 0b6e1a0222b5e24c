"""The demo family: a little conv image encoder, a bag-of-words text encoder and a CLIP4Cir-style
gated combiner, all producing normalised ``embed_dim`` vectors; cosine score.

Images are target-padded (1.25) and resized/cropped to ``image_size`` (height, width), default 80x64.
Text: lowercase words (``[a-z0-9]+``) looked up in the vocabulary stored in the config; unknown words
map to ``<unk>``. There is no temperature/logit scale here: the trainer owns it. ``encode_images`` and
``encode_queries`` keep gradients, so a trainer can call them directly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.base import CIRModel
from models_zoo.preprocess import ImagePreprocessor

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def tokenize_words(text: str) -> list[str]:
    """Lowercase words of ``text`` (runs of letters and digits)."""
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], *, min_count: int = 1) -> list[str]:
    """``[<pad>, <unk>, words...]``: words seen at least ``min_count`` times, most frequent first (ties by word)."""
    counts = Counter(word for text in texts for word in tokenize_words(text))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK] + words


@dataclass
class DemoConfig:
    """Architecture of a demo model; saved as ``config.json`` next to the weights."""

    vocab: list[str] = field(default_factory=lambda: [PAD, UNK])
    image_size: tuple[int, int] = (80, 64)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    embed_dim: int = 128
    word_dim: int = 64
    hidden_dim: int = 256
    pad_ratio: float | None = 1.25

    def __post_init__(self) -> None:
        self.image_size = tuple(int(x) for x in self.image_size)  # type: ignore[assignment]
        self.channels = tuple(int(x) for x in self.channels)
        if self.vocab[:2] != [PAD, UNK]:
            raise ValueError(f"A demo vocabulary starts with {PAD!r}, {UNK!r}; got {self.vocab[:2]}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("The demo vocabulary has duplicate words")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["image_size"], data["channels"] = list(self.image_size), list(self.channels)
        return data


class ImageEncoder(nn.Module):
    """Conv blocks (3x3 conv, GroupNorm, ReLU, 2x2 max-pool), global average pool, linear -> ``embed_dim``."""

    def __init__(self, channels: Sequence[int], embed_dim: int):
        super().__init__()
        blocks: list[nn.Module] = []
        previous = 3
        for width in channels:
            blocks += [
                nn.Conv2d(previous, width, 3, padding=1),
                nn.GroupNorm(min(8, width), width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(previous, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(pixels).mean(dim=(2, 3)))


class TextEncoder(nn.Module):
    """Mean of word embeddings (EmbeddingBag, ``<pad>`` ignored), then a two-layer MLP -> ``embed_dim``."""

    def __init__(self, vocab_size: int, word_dim: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, word_dim, mode="mean", padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(word_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embedding(ids, offsets))


class GatedCombiner(nn.Module):
    """CLIP4Cir-style: ``normalise(mlp([t; i]) + λ·t + (1-λ)·i)`` with a learned sigmoid gate λ."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.text_projection_layer = nn.Linear(dim, hidden_dim)
        self.image_projection_layer = nn.Linear(dim, hidden_dim)
        self.combiner_layer = nn.Linear(2 * hidden_dim, hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, dim)
        self.dynamic_scalar = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim // 4), nn.ReLU(), nn.Linear(hidden_dim // 4, 1), nn.Sigmoid()
        )

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        raw = torch.cat((F.relu(self.text_projection_layer(text)), F.relu(self.image_projection_layer(image))), -1)
        gate = self.dynamic_scalar(raw)
        output = self.output_layer(F.relu(self.combiner_layer(raw))) + gate * text + (1 - gate) * image
        return F.normalize(output, dim=-1)


#: ``combiner``: the trained composition. The others are zero-shot-style heuristics over the same encoders:
#: ``image`` (reference image only), ``text`` (modification text only), ``sum`` (normalise(image + text)).
DEMO_VARIANTS = ("combiner", "image", "text", "sum")


class DemoCIR(CIRModel):
    family = "demo"

    def __init__(self, config: DemoConfig, *, variant: str = "combiner"):
        super().__init__()
        if variant not in DEMO_VARIANTS:
            raise ValueError(f"unknown demo variant {variant!r}; known: {', '.join(DEMO_VARIANTS)}")
        self.variant = variant
        self.config = config
        self.word_index = {word: index for index, word in enumerate(config.vocab)}
        self.image_encoder = ImageEncoder(config.channels, config.embed_dim)
        self.text_encoder = TextEncoder(len(config.vocab), config.word_dim, config.embed_dim)
        self.combiner = GatedCombiner(config.embed_dim, config.hidden_dim)
        self.image_preprocessor = ImagePreprocessor(size=config.image_size, pad_ratio=config.pad_ratio)

    def text_ids(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat word ids and per-text offsets for the EmbeddingBag (an empty text gets one ``<pad>``)."""
        unk = self.word_index[UNK]
        ids: list[int] = []
        offsets: list[int] = []
        for text in texts:
            offsets.append(len(ids))
            ids.extend([self.word_index.get(w, unk) for w in tokenize_words(text)] or [0])
        device = self.device
        return torch.tensor(ids, dtype=torch.long, device=device), torch.tensor(
            offsets, dtype=torch.long, device=device
        )

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(pixel_values)

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text_encoder(*self.text_ids(texts))

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_features(pixel_values), dim=-1)

    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        if len(texts) != pixel_values.shape[0]:
            raise ValueError(f"{pixel_values.shape[0]} reference images but {len(texts)} texts")
        image = self.image_features(pixel_values)
        text = self.text_features(texts).to(image.dtype)
        if self.variant == "combiner":
            return self.combiner(image, text)
        image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
        if self.variant == "image":
            return image
        if self.variant == "text":
            return text
        return F.normalize(image + text, dim=-1)
