"""Text and URLs shown to annotators."""

from __future__ import annotations

from annotate import aliases


def image_url(token: str) -> str:
    """The URL an annotator's page loads an image from: its campaign token (annotate/aliases.py), never the id."""
    return aliases.image_url(token)
