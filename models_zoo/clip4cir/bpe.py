"""OpenAI CLIP's tokenizer (``clip.tokenize``) from its BPE merges file, offline.

The vocabulary is OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` (gzip or plain text; a header line, then one merge
``"a b"`` a line). As OpenAI's ``SimpleTokenizer`` builds it: the 256 byte symbols, the same with ``</w>``, one
token a merge (the first 49152 - 256 - 2 merges), then ``<|startoftext|>`` and ``<|endoftext|>`` (ids 49406 and
49407 for the released file). The byte-level BPE itself runs in transformers' ``CLIPTokenizer`` (the
``tokenizers`` library) built from that vocabulary; the text is cleaned first as ``clip.tokenize`` does
(``ftfy.fix_text``, HTML entities unescaped twice, whitespace runs collapsed, lowercased).

``encode(texts)`` gives ``(B, context_length)`` int64 ids ``[SOT, ..., EOT, 0, ...]``, as
``clip.tokenize(texts, context_length, truncate=True)``: a text too long keeps its first ``context_length - 2``
tokens and still ends with EOT (the official default raises instead; a run should not fail on one long text).
"""

from __future__ import annotations

import gzip
import html
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from models_zoo.errors import CheckpointError

BPE_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"
START, END = "<|startoftext|>", "<|endoftext|>"
#: ``SimpleTokenizer`` keeps ``merges[1 : 49152 - 256 - 2 + 1]`` of the file's lines.
MAX_MERGES = 49152 - 256 - 2


def byte_symbols() -> list[str]:
    """The stand-ins byte-level BPE uses for bytes, in OpenAI's ``bytes_to_unicode`` order: the printable
    bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) as themselves, then the other bytes in order as
    ``chr(256 + n)``."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(byte) for byte in printable] + [chr(256 + n) for n in range(len(others))]


def read_merges(path: str | Path) -> list[tuple[str, str]]:
    """The merges of a CLIP BPE file (gzip or plain UTF-8). Raises CheckpointError naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise CheckpointError(f"CLIP BPE vocabulary {path}: cannot be read: {exc}") from exc
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(text.split("\n")[1 : MAX_MERGES + 1], start=2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CheckpointError(
                f"CLIP BPE vocabulary {path}, line {number}: expected a merge 'a b', got {line!r:.60}"
            )
        merges.append((parts[0], parts[1]))
    return merges


def vocabulary(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Token -> id as ``SimpleTokenizer`` numbers them."""
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START, END]
    return {token: index for index, token in enumerate(tokens)}


def clean(text: str) -> str:
    """``clip.tokenize``'s cleaning before BPE: ftfy, HTML entities unescaped twice, whitespace collapsed,
    lowercased."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


class ClipBpeTokenizer:
    """``clip.tokenize`` for one vocabulary. Built with :meth:`from_file`."""

    def __init__(self, merges: Sequence[tuple[str, str]], *, source: str = "CLIP BPE vocabulary"):
        from transformers import CLIPTokenizer

        self.vocab = vocabulary(merges)
        self.sot, self.eot = self.vocab[START], self.vocab[END]
        self.source = source
        self._bpe = CLIPTokenizer(vocab=self.vocab, merges=list(merges))

    @classmethod
    def from_file(cls, path: str | Path) -> ClipBpeTokenizer:
        return cls(read_merges(path), source=str(path))

    def __len__(self) -> int:
        return len(self.vocab)

    def token_ids(self, text: str) -> list[int]:
        """The BPE ids of one text, without start/end tokens."""
        return list(self._bpe(clean(text), add_special_tokens=False)["input_ids"])

    def encode(self, texts: Sequence[str], *, context_length: int = 77) -> torch.Tensor:
        """``(len(texts), context_length)`` int64 ids, zero-padded (see the module docstring)."""
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.token_ids(text)[: context_length - 2], self.eot]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out
