"""Query-text formatting exactly as the official evaluation code builds it."""

from __future__ import annotations

import re
from collections.abc import Sequence


def fashioniq_query_text(captions: Sequence[str]) -> str:
    """FashionIQ's two relative captions joined as CLIP4Cir's evaluation does:
    ``f"{cap1.strip('.?, ').capitalize()} and {cap2.strip('.?, ')}"``.

    Raises ValueError unless exactly two captions are given.
    """
    if isinstance(captions, str) or len(captions) != 2:
        raise ValueError(f"FashionIQ queries have exactly two captions, got {captions!r}")
    first, second = captions
    return f"{first.strip('.?, ').capitalize()} and {second.strip('.?, ')}"


def cirr_query_text(caption: str) -> str:
    """CIRR's relative caption, used as is (surrounding whitespace removed), as CLIP4Cir/SPRC/QuRe do."""
    return caption.strip()


def blip_caption_text(caption: str, *, max_words: int = 50) -> str:
    """LAVIS's ``blip_caption`` eval text processor (used by SPRC and QuRe before tokenising):
    lowercase, the characters ``.!"()*#:;~`` replaced by spaces, runs of whitespace collapsed,
    stripped, and cut to ``max_words`` words."""
    text = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    text = re.sub(r"\s{2,}", " ", text)
    text = text.rstrip("\n").strip(" ")
    words = text.split(" ")
    if len(words) > max_words:
        text = " ".join(words[:max_words])
    return text
