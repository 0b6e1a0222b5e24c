"""Read a FashionIQ-layout folder (FashionIQ itself or hpbench's demo dataset) into trainer query sets.

No database: ``images/<name>.png``, ``image_splits/split.<category>.<split>.json`` and
``captions/cap.<category>.<split>.json`` are read directly. The query text is FashionIQ's
(:func:`models_zoo.text.fashioniq_query_text`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image as PILImage

from models_zoo.qure.data import FilePixels, QuerySet
from models_zoo.text import fashioniq_query_text

FASHIONIQ_CATEGORIES: tuple[str, ...] = ("dress", "shirt", "toptee")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")


@dataclass
class FolderQueries:
    """A query set plus what the evaluation needs: image names, raw captions, reference/target names."""

    queries: QuerySet
    names: list[str]  # image id -> image name
    captions: list[list[str]]  # per query


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def _image_path(root: Path, name: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = root / "images" / f"{name}{suffix}"
        if path.is_file():
            return path
    raise ValueError(f"image {name!r} not found under {root / 'images'}")


def fashioniq_folder_queries(
    root: str | Path,
    split: str,
    *,
    preprocess: Callable[[PILImage.Image], torch.Tensor],
    categories: Sequence[str] = FASHIONIQ_CATEGORIES,
    cache: bool = True,
) -> FolderQueries:
    """The ``split`` queries of every category in ``categories`` found under ``root``.

    Image ids cover the split's gallery images and every reference/target image of its queries; each
    category's gallery (``queries.galleries``) is its split file. Raises ValueError naming a missing or
    malformed file, a query without a target, or a missing image.
    """
    root = Path(root)
    names: list[str] = []
    index: dict[str, int] = {}

    def image_id(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    reference, target, texts, query_categories, captions = [], [], [], [], []
    galleries: dict[str, list[int]] = {}
    for category in categories:
        split_file = root / "image_splits" / f"split.{category}.{split}.json"
        caption_file = root / "captions" / f"cap.{category}.{split}.json"
        if not split_file.is_file() and not caption_file.is_file():
            continue
        gallery = _read_json(split_file)
        entries = _read_json(caption_file)
        if not isinstance(gallery, list) or not isinstance(entries, list):
            raise ValueError(f"{split_file} and {caption_file} must hold JSON lists")
        galleries[category] = [image_id(str(name)) for name in gallery]
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict) or "target" not in entry or "candidate" not in entry:
                raise ValueError(f"{caption_file}[{position}]: expected an entry with 'candidate' and 'target'")
            try:
                text = fashioniq_query_text(entry.get("captions", []))
            except ValueError as exc:
                raise ValueError(f"{caption_file}[{position}]: {exc}") from None
            reference.append(image_id(str(entry["candidate"])))
            target.append(image_id(str(entry["target"])))
            texts.append(text)
            query_categories.append(category)
            captions.append(list(entry["captions"]))
    if not reference:
        raise ValueError(f"no {split} queries under {root} for categories {', '.join(categories)}")
    pixels = FilePixels([_image_path(root, name) for name in names], preprocess, cache=cache)
    queries = QuerySet(pixels, reference, target, texts, query_categories, galleries)
    return FolderQueries(queries=queries, names=names, captions=captions)
