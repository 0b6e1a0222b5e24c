"""Builders of small dataset folders in the exact FashionIQ and CIRR layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage


def write_png(path: Path, colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (12, 15), colour).save(path)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def build_fashioniq(root: Path, *, layout: str = "images", suffix: str = ".png") -> Path:
    """dress: 4 images per split; val has 2 queries, test 1 query without target."""
    for split in ("train", "val", "test"):
        names = [f"D{split[:2]}{i}" for i in range(4)]
        write_json(root / "image_splits" / f"split.dress.{split}.json", names)
        for name in names:
            folder = root / "images" if layout == "images" else root / "image_data" / "dress"
            write_png(folder / f"{name}{suffix}")
        entries = [
            {"candidate": names[0], "target": names[1], "captions": ["is red", "has long sleeves"]},
            {"candidate": names[2], "target": names[3], "captions": ["is shorter.", "is blue"]},
        ]
        if split == "test":
            entries = [{"candidate": names[0], "captions": ["is red", "is darker"]}]
        write_json(root / "captions" / f"cap.dress.{split}.json", entries)
    return root


def build_cirr(root: Path, *, test1_images: int = 5) -> Path:
    for split, folder in (("val", "dev"), ("test1", "test1")):
        names = [f"{folder}-{i}-img0" for i in range(5 if split == "val" else test1_images)]
        write_json(root / "cirr" / "image_splits" / f"split.rc2.{split}.json",
                   {n: f"./{folder}/{n}.png" for n in names})
        for name in names:
            write_png(root / folder / f"{name}.png")
        entry = {
            "pairid": 7 if split == "val" else 9, "reference": names[0], "caption": "show two of them",
            "img_set": {"id": 3, "members": names[:4], "reference_rank": 0},
        }
        if split == "val":
            entry.update({"target_hard": names[1], "target_soft": {names[1]: 1.0}})
            entry["img_set"]["target_rank"] = 1
        write_json(root / "cirr" / "captions" / f"cap.rc2.{split}.json", [entry])
    return root


@pytest.fixture
def fashioniq_root(tmp_path) -> Path:
    return build_fashioniq(tmp_path / "fiq")


@pytest.fixture
def cirr_root(tmp_path) -> Path:
    return build_cirr(tmp_path / "cirr_root")


#: The image FashionIQ-style split files below list under two categories (dress and shirt).
SHARED = "B00SHARED"


def build_fashioniq_listed_twice(root: Path, *, per_category: int = 30, seed: int = 0) -> Path:
    """A FashionIQ folder in the official layout (``images/``, ``image_splits/split.<category>.val.json``,
    ``captions/cap.<category>.val.json``) whose dress and shirt split files both list :data:`SHARED`, the target
    of a query in each; ``per_category`` noisy images per category, so rankings differ."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for category in ("dress", "shirt", "toptee"):
        letter = category[0].upper()
        names = [f"{letter}{i}" for i in range(per_category)]
        if category != "toptee":
            names.insert(per_category // 2, SHARED)
        write_json(root / "image_splits" / f"split.{category}.val.json", names)
        for name in names:
            path = root / "images" / f"{name}.png"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                PILImage.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(path)
        pairs = [(f"{letter}{i}", f"{letter}{i + 1}") for i in range(0, 8, 2)]
        if category != "toptee":
            pairs.insert(1, (f"{letter}9", SHARED))
        entries = [
            {"candidate": c, "target": t, "captions": [f"is {category} number {i}.", f"has {i} stripes"]}
            for i, (c, t) in enumerate(pairs)
        ]
        write_json(root / "captions" / f"cap.{category}.val.json", entries)
    return root
