"""Dataset importers for the FashionIQ and CIRR folder layouts (the demo dataset uses FashionIQ's).

Each importer reads a folder, validates every file and entry, and writes Dataset, Image and Query
rows in ONE transaction: any bad input raises :class:`DatasetImportError` naming the file and entry,
and nothing is written. Missing image files (a FashionIQ reality) are not errors: they are reported
by count and name, and the queries that need them are skipped (counted per split in the report). An image
listed in several split files (FashionIQ lists some under two categories) is one ``Image`` with an
``ImageListing`` per split file, so every category's gallery is its split file. Re-running an import updates
rows in place (images by name, queries by their stable key, the listings of the split files read), so it is
idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from hpbench.catalog.models import Dataset, Image, ImageListing, Query

FASHIONIQ_CATEGORIES = ("dress", "shirt", "toptee")
FASHIONIQ_SPLITS = ("train", "val", "test")
CIRR_SPLITS = ("train", "val", "test1")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Progress = Callable[[Iterable, str, int], Iterable]


def _no_progress(items: Iterable, desc: str, total: int) -> Iterable:
    return items


class DatasetImportError(ValueError):
    """Bad input: the message names the file (and entry) at fault."""


@dataclass
class ImportReport:
    dataset: str
    kind: str
    images: int = 0
    queries: int = 0
    images_created: int = 0
    queries_created: int = 0
    missing_images: list[str] = field(default_factory=list)
    skipped_queries: int = 0
    per_split: dict[str, dict[str, int]] = field(default_factory=dict)
    # Images the split files list more than once (FashionIQ: under two categories); each listing is kept.
    images_listed_twice: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "images": self.images,
            "images_created": self.images_created,
            "queries": self.queries,
            "queries_created": self.queries_created,
            "missing_images": len(self.missing_images),
            "missing_image_names": sorted(self.missing_images),
            "skipped_queries": self.skipped_queries,
            "per_split": self.per_split,
            "images_listed_twice": len(self.images_listed_twice),
            "images_listed_twice_names": self.images_listed_twice[:100],
        }


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetImportError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetImportError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except UnicodeDecodeError as exc:
        raise DatasetImportError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _require(entry: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(entry, dict):
        raise DatasetImportError(f"{where}: expected an object, got {type(entry).__name__}")
    if key not in entry:
        raise DatasetImportError(f"{where}: missing field {key!r}")
    value = entry[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DatasetImportError(f"{where}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def _check_readable(path: Path, where: str) -> None:
    try:
        with PILImage.open(path) as handle:
            handle.size  # noqa: B018 - reading the header is the check
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetImportError(f"{path}: unreadable image ({where}): {exc}") from None


class _Writer:
    """Collects images, their listings and queries, then upserts them in bulk.

    An image listed in several split files (FashionIQ lists some under two categories) is one ``Image`` row,
    whose split and category are those of its first listing, with one ``ImageListing`` per listing: each
    category's gallery is exactly its split file.
    """

    def __init__(self, dataset: Dataset, report: ImportReport) -> None:
        self.dataset = dataset
        self.report = report
        self.images: dict[str, Image] = {}
        self.listings: dict[str, dict[tuple[str, str], None]] = {}  # name -> (split, category), in file order
        self.covered: set[tuple[str, str]] = set()  # the (split, category) split files this import read
        self.queries: list[Query] = []

    def cover(self, *, split: str, category: str) -> None:
        """This import reads the split file of (split, category): its listings are replaced by the ones added."""
        self.covered.add((split, category))

    def add_image(self, *, name: str, category: str, split: str, file_path: str, attributes: dict) -> None:
        self.cover(split=split, category=category)
        if name not in self.images:
            self.images[name] = Image(
                dataset=self.dataset, name=name, category=category, split=split,
                file_path=file_path, attributes=attributes,
            )
        self.listings.setdefault(name, {})[(split, category)] = None

    def _flush_listings(self, ids: dict[str, int]) -> None:
        stale = Q()
        for split, category in self.covered:
            stale |= Q(split=split, category=category)
        if self.covered:
            ImageListing.objects.filter(stale, dataset=self.dataset).delete()
        ImageListing.objects.bulk_create(
            [
                ImageListing(dataset=self.dataset, image_id=ids[name], split=split, category=category)
                for name, places in self.listings.items()
                for split, category in places
            ],
            batch_size=2000, ignore_conflicts=True,
        )
        self.report.images_listed_twice = sorted(name for name, places in self.listings.items() if len(places) > 1)

    def flush(self, pending_queries: list[dict[str, Any]]) -> None:
        existing_images = set(Image.objects.filter(dataset=self.dataset).values_list("name", flat=True))
        Image.objects.bulk_create(
            list(self.images.values()), batch_size=2000, update_conflicts=True,
            unique_fields=["dataset", "name"], update_fields=["category", "split", "file_path", "attributes"],
        )
        ids = dict(Image.objects.filter(dataset=self.dataset).values_list("name", "id"))
        self._flush_listings(ids)
        existing_queries = set(Query.objects.filter(dataset=self.dataset).values_list("key", flat=True))
        rows = [
            Query(
                dataset=self.dataset, key=q["key"], split=q["split"], category=q["category"],
                reference_id=ids[q["reference"]], target_id=ids[q["target"]] if q["target"] else None,
                captions=q["captions"], pairid=q.get("pairid"), subset_members=q.get("subset_members", []),
                extra=q.get("extra", {}),
            )
            for q in pending_queries
        ]
        Query.objects.bulk_create(
            rows, batch_size=2000, update_conflicts=True, unique_fields=["dataset", "key"],
            update_fields=["split", "category", "reference", "target", "captions", "pairid",
                           "subset_members", "extra"],
        )
        self.report.images = len(self.images)
        self.report.images_created = len(set(self.images) - existing_images)
        self.report.queries = len(rows)
        self.report.queries_created = len({q["key"] for q in pending_queries} - existing_queries)


def _dataset_for(name: str, kind: str, image_root: Path) -> Dataset:
    dataset, _ = Dataset.objects.update_or_create(
        name=name, defaults={"kind": kind, "image_root": str(image_root)}
    )
    return dataset


def _find_fashioniq_image(root: Path, category: str, name: str) -> Path | None:
    for folder in (root / "images", root / "image_data" / category):
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def import_fashioniq(
    root: Path | str,
    *,
    name: str,
    splits: Iterable[str] = FASHIONIQ_SPLITS,
    categories: Iterable[str] = FASHIONIQ_CATEGORIES,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Import a FashionIQ-layout folder (``captions/``, ``image_splits/``, ``images/`` or ``image_data/``).

    A folder with an ``attributes.json`` (the generated demo dataset) is imported as kind ``demo``,
    and each image's ground-truth attributes are stored on its row.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetImportError(f"{root}: dataset folder not found")
    splits, categories = list(splits), list(categories)
    for split in splits:
        if split not in FASHIONIQ_SPLITS:
            raise DatasetImportError(f"unknown FashionIQ split {split!r}; expected one of {FASHIONIQ_SPLITS}")
    attributes_path = root / "attributes.json"
    attributes: dict[str, dict] = _read_json(attributes_path) if attributes_path.exists() else {}
    if not isinstance(attributes, dict):
        raise DatasetImportError(f"{attributes_path}: expected an object mapping image names to attributes")
    kind = Dataset.Kind.DEMO if attributes_path.exists() else Dataset.Kind.FASHIONIQ
    report = ImportReport(dataset=name, kind=kind)
    pending: list[dict[str, Any]] = []

    with transaction.atomic():
        dataset = _dataset_for(name, kind, root)
        writer = _Writer(dataset, report)
        for category in categories:
            for split in splits:
                split_path = root / "image_splits" / f"split.{category}.{split}.json"
                writer.cover(split=split, category=category)
                names = _read_json(split_path)
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise DatasetImportError(f"{split_path}: expected a list of image names")
                present: set[str] = set()
                for image_name in progress(names, f"{category}/{split} images", len(names)):
                    path = _find_fashioniq_image(root, category, image_name)
                    if path is None:
                        report.missing_images.append(image_name)
                        continue
                    _check_readable(path, f"listed in {split_path.name}")
                    present.add(image_name)
                    writer.add_image(
                        name=image_name, category=category, split=split,
                        file_path=str(path.relative_to(root)), attributes=attributes.get(image_name, {}),
                    )
                listed = set(names)
                caption_path = root / "captions" / f"cap.{category}.{split}.json"
                entries = _read_json(caption_path)
                if not isinstance(entries, list):
                    raise DatasetImportError(f"{caption_path}: expected a list of caption entries")
                kept = skipped = 0
                for index, entry in enumerate(entries):
                    where = f"{caption_path} entry {index}"
                    candidate = _require(entry, "candidate", str, where)
                    captions = _require(entry, "captions", list, where)
                    if not captions or not all(isinstance(c, str) for c in captions):
                        raise DatasetImportError(f"{where}: 'captions' should be a non-empty list of strings")
                    target = _require(entry, "target", str, where) if split != "test" else entry.get("target")
                    for role, image_name in (("candidate", candidate), ("target", target)):
                        if image_name is not None and image_name not in listed:
                            raise DatasetImportError(
                                f"{where}: {role} image {image_name!r} is not in {split_path.name}"
                            )
                    if candidate not in present or (target is not None and target not in present):
                        skipped += 1
                        continue
                    kept += 1
                    pending.append({
                        "key": f"{category}.{split}.{index}", "split": split, "category": category,
                        "reference": candidate, "target": target, "captions": captions,
                    })
                report.skipped_queries += skipped
                report.per_split[f"{category}/{split}"] = {
                    "images": len(present), "queries": kept, "skipped_queries": skipped,
                }
        writer.flush(pending)
    return report


def import_cirr(
    root: Path | str,
    *,
    name: str,
    splits: Iterable[str] = CIRR_SPLITS,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Import a CIRR folder: ``cirr/captions/cap.rc2.{split}.json`` and ``cirr/image_splits/split.rc2.{split}.json``.

    Image paths in the split files (``./dev/dev-0-0-img0.png``) are relative to ``root``.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetImportError(f"{root}: dataset folder not found")
    report = ImportReport(dataset=name, kind=Dataset.Kind.CIRR)
    pending: list[dict[str, Any]] = []
    with transaction.atomic():
        dataset = _dataset_for(name, Dataset.Kind.CIRR, root)
        writer = _Writer(dataset, report)
        for split in splits:
            if split not in CIRR_SPLITS:
                raise DatasetImportError(f"unknown CIRR split {split!r}; expected one of {CIRR_SPLITS}")
            split_path = root / "cirr" / "image_splits" / f"split.rc2.{split}.json"
            writer.cover(split=split, category="")
            mapping = _read_json(split_path)
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise DatasetImportError(f"{split_path}: expected an object mapping image names to paths")
            present: set[str] = set()
            for image_name, relative in progress(mapping.items(), f"{split} images", len(mapping)):
                path = (root / relative).resolve()
                if not path.is_relative_to(root):
                    raise DatasetImportError(f"{split_path}: path of {image_name!r} leaves the dataset folder")
                if not path.is_file():
                    report.missing_images.append(image_name)
                    continue
                _check_readable(path, f"listed in {split_path.name}")
                present.add(image_name)
                writer.add_image(
                    name=image_name, category="", split=split,
                    file_path=str(path.relative_to(root)), attributes={},
                )
            caption_path = root / "cirr" / "captions" / f"cap.rc2.{split}.json"
            entries = _read_json(caption_path)
            if not isinstance(entries, list):
                raise DatasetImportError(f"{caption_path}: expected a list of caption entries")
            has_targets = split != "test1"
            kept = skipped = 0
            for index, entry in enumerate(entries):
                where = f"{caption_path} entry {index}"
                pairid = _require(entry, "pairid", int, where)
                where = f"{caption_path} entry {index} (pairid {pairid})"
                reference = _require(entry, "reference", str, where)
                caption = _require(entry, "caption", str, where)
                img_set = _require(entry, "img_set", dict, where)
                members = _require(img_set, "members", list, f"{where} img_set")
                target = _require(entry, "target_hard", str, where) if has_targets else None
                for role, image_name in [("reference", reference), ("target_hard", target)] + [
                    ("img_set member", m) for m in members
                ]:
                    if image_name is not None and image_name not in mapping:
                        raise DatasetImportError(f"{where}: {role} {image_name!r} is not in {split_path.name}")
                if reference not in present or (target is not None and target not in present):
                    skipped += 1
                    continue
                kept += 1
                pending.append({
                    "key": f"{split}.{pairid}", "split": split, "category": "", "reference": reference,
                    "target": target, "captions": [caption], "pairid": pairid, "subset_members": members,
                    "extra": {
                        "target_soft": entry.get("target_soft", {}),
                        "img_set_id": img_set.get("id"),
                        "reference_rank": img_set.get("reference_rank"),
                        "target_rank": img_set.get("target_rank"),
                    },
                })
            report.skipped_queries += skipped
            report.per_split[split] = {"images": len(present), "queries": kept, "skipped_queries": skipped}
        writer.flush(pending)
    return report
