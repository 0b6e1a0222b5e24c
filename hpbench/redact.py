"""Error text for researchers: what went wrong, without the server's file layout.

Workers store full errors (paths, tracebacks) on job rows for staff and logs; pages and API answers for
anyone else pass them through :func:`researcher_text`.
"""

from __future__ import annotations

import re

# An absolute POSIX path (or file:// URL) not glued to a word, a URL or another path: "/srv/x/y.pt".
_PATH = re.compile(r"(?<![\w.:/~\\…<-])(?:file://)?(?:~|/)[^\s:'\"`<>|,;()\[\]{}]*")
_QUOTED_PATH = re.compile(r"(['\"])((?:file://)?(?:~|/)[^'\"\n]*)\1")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t]+.*\n?)*")


#: The one part of a path worth showing: the name of an uploaded checkpoint (the researcher's own file name).
_SHOWN_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def _short_path(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return f"…/{name}" if name.lower().endswith(_SHOWN_SUFFIXES) else "<server path>"


def researcher_text(text: str) -> str:
    """``text`` with traceback frames dropped and every absolute path replaced: by ``…/<file name>`` for a
    checkpoint file, by ``<server path>`` for anything else.

    ``"Checkpoint /srv/media/checkpoints/2026/x.pt: not found"`` → ``"Checkpoint …/x.pt: not found"``;
    ``"CLIP folder /models/clip: not found"`` → ``"CLIP folder <server path>: not found"``.
    """
    if not text:
        return text
    text = _TRACEBACK.sub("Traceback: (left out)\n", text)
    text = _QUOTED_PATH.sub(lambda m: m.group(1) + _short_path(m.group(2)) + m.group(1), text)
    return _PATH.sub(lambda m: _short_path(m.group(0)), text)
