"""Reading the released HP-FashionIQ preference file (``hpfiq.json``, QuRe, ICML 2025). No Django here.

Layout: ``{"user_N": {"question_set_K": {"ref_img_paths": [...], "targ_img_paths": [...],
"sentences": [...], "retrieved_set1": [{"img_path": [5 paths], "user_score": "1".."5"}, ...],
"retrieved_set2": [...], "preferred set": ["1" | "2", ...]}}}``, the lists parallel. Paths look like
``/-/image_data/<category>/<ASIN>.jpg``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hpbench.catalog.query_text import query_text

_FIELDS = ("ref_img_paths", "targ_img_paths", "sentences", "retrieved_set1", "retrieved_set2", "preferred set")


class HpfiqFormatError(ValueError):
    """The file does not have the released layout; the message names the place."""


@dataclass(frozen=True)
class ImageRef:
    """An image named by the file: its FashionIQ name (the ASIN) and category folder."""

    name: str
    category: str


@dataclass(frozen=True)
class HpfiqQuestion:
    key: str  # "user_1/question_set_1/0": stable across re-imports
    annotator: str
    reference: ImageRef
    target: ImageRef | None
    text: str
    set1: tuple[ImageRef, ...]
    set2: tuple[ImageRef, ...]
    likert1: int
    likert2: int
    preferred: int  # 1 or 2


def image_ref(path: str, *, where: str) -> ImageRef:
    """``/-/image_data/shirt/B000LUIBH8.jpg`` -> ``ImageRef("B000LUIBH8", "shirt")``."""
    if not isinstance(path, str) or not path.strip():
        raise HpfiqFormatError(f"{where}: expected an image path, got {path!r}")
    pure = PurePosixPath(path.strip())
    if not pure.stem:
        raise HpfiqFormatError(f"{where}: cannot read an image name from {path!r}")
    return ImageRef(name=pure.stem, category=pure.parent.name)


def _natural(key: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key))


def _likert(entry: object, *, where: str) -> int:
    try:
        score = int(str(entry["user_score"]).strip())  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        raise HpfiqFormatError(f"{where}: 'user_score' must be a number 1-5, got {entry!r:.80}") from None
    if not 1 <= score <= 5:
        raise HpfiqFormatError(f"{where}: 'user_score' {score} is outside 1-5")
    return score


def _image_set(entry: object, *, where: str) -> tuple[ImageRef, ...]:
    paths = entry.get("img_path") if isinstance(entry, dict) else None
    if not isinstance(paths, list) or not paths:
        raise HpfiqFormatError(f"{where}: expected {{'img_path': [paths], ...}}, got {entry!r:.80}")
    return tuple(image_ref(p, where=f"{where}.img_path[{i}]") for i, p in enumerate(paths))


def iter_questions(data: dict) -> Iterator[HpfiqQuestion]:
    """Every question of a loaded file, in a stable order (annotators and sets in natural order)."""
    if not isinstance(data, dict):
        raise HpfiqFormatError("top level: expected an object of annotators ('user_1': {...})")
    for annotator in sorted(data, key=_natural):
        sets = data[annotator]
        if not isinstance(sets, dict):
            raise HpfiqFormatError(f"{annotator}: expected an object of question sets")
        for set_name in sorted(sets, key=_natural):
            block = sets[set_name]
            where = f"{annotator}/{set_name}"
            if not isinstance(block, dict):
                raise HpfiqFormatError(f"{where}: expected an object with {', '.join(_FIELDS)}")
            missing = [f for f in _FIELDS if f not in block]
            if missing:
                raise HpfiqFormatError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
            lengths = {f: len(block[f]) for f in _FIELDS if isinstance(block[f], list)}
            if len(lengths) != len(_FIELDS) or len(set(lengths.values())) != 1:
                raise HpfiqFormatError(f"{where}: the fields must be lists of one length, got {lengths}")
            for i in range(lengths["sentences"]):
                at = f"{where}[{i}]"
                preferred = str(block["preferred set"][i]).strip()
                if preferred not in ("1", "2"):
                    raise HpfiqFormatError(f"{at}: 'preferred set' must be '1' or '2', got {preferred!r}")
                target_path = block["targ_img_paths"][i]
                yield HpfiqQuestion(
                    key=f"{annotator}/{set_name}/{i}",
                    annotator=annotator,
                    reference=image_ref(block["ref_img_paths"][i], where=f"{at}.ref_img_paths"),
                    target=image_ref(target_path, where=f"{at}.targ_img_paths") if target_path else None,
                    text=query_text(protocol="hpfiq", captions=[str(block["sentences"][i])]),
                    set1=_image_set(block["retrieved_set1"][i], where=f"{at}.retrieved_set1"),
                    set2=_image_set(block["retrieved_set2"][i], where=f"{at}.retrieved_set2"),
                    likert1=_likert(block["retrieved_set1"][i], where=f"{at}.retrieved_set1"),
                    likert2=_likert(block["retrieved_set2"][i], where=f"{at}.retrieved_set2"),
                    preferred=int(preferred),
                )


def load_questions(path: str | Path) -> list[HpfiqQuestion]:
    """Read and check the file; raises ``HpfiqFormatError`` naming the file and place on bad input."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HpfiqFormatError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise HpfiqFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    try:
        return list(iter_questions(data))
    except HpfiqFormatError as exc:
        raise HpfiqFormatError(f"{path}: {exc}") from None


def image_names(questions: list[HpfiqQuestion]) -> dict[str, str]:
    """Every image the questions name (references, targets, both sets): ``{name: category}``."""
    names: dict[str, str] = {}
    for q in questions:
        for ref in (q.reference, q.target, *q.set1, *q.set2):
            if ref is not None:
                names.setdefault(ref.name, ref.category)
    return names
