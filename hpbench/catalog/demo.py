"""The embedded demo dataset: procedurally drawn garments in the exact FashionIQ folder layout.

:func:`make_demo_dataset` writes::

    OUT/images/<name>.png                          384x480 garments on a light background
    OUT/image_splits/split.<category>.<split>.json list of image names
    OUT/captions/cap.<category>.<split>.json       [{"candidate", "target", "captions": [c1, c2]}, ...]
                                                   (the test split has no "target", as in FashionIQ)
    OUT/attributes.json                            {name: {"category", "colour", "pattern", "sleeves",
                                                           "neckline", "length"}}
    OUT/demo_manifest.json                         how it was made (marks the folder as a demo dataset)

Everything follows from the seed: the same seed gives byte-identical files. Captions describe the target
relative to the reference with the grammar of :mod:`hpbench.catalog.oracle`, so
``oracle.requested_attributes(captions, reference_attributes)`` recovers exactly what was asked for.

The gallery is drawn like a shop's catalogue, so that a query has near-targets (false negatives) as FashionIQ
queries do: each category's products take popular attribute values more often than rare ones (a value's
weight falls as ``1 / rank ** POPULARITY_EXPONENT`` along a per-category popularity order), and a product is
listed several times (a geometric number of images, :data:`MEAN_LISTINGS` on average, each drawn with its own
jitter). A query's near-targets are the other images of its split and category that satisfy it
(:func:`hpbench.catalog.oracle.satisfies`); :func:`near_target_stats` counts them and the summary reports them.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter

from hpbench.catalog import oracle

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.6, "val": 0.2}  # test gets the rest
#: The garments are designed in a 96x120 frame and drawn SCALE times larger, so they stay sharp when the
#: voting page enlarges them (models read them at their own input size).
FRAME: tuple[int, int] = (96, 120)
SCALE = 4
IMAGE_SIZE: tuple[int, int] = (FRAME[0] * SCALE, FRAME[1] * SCALE)
NAME_PREFIX = "B0DEMO"
MANIFEST_NAME = "demo_manifest.json"
GENERATOR_ID = "hpbench.catalog.demo"
FORMAT_VERSION = 3
MIN_PER_CATEGORY = 10
MAX_DIFFERENCES = 3
#: Attribute values are drawn with weights ``1 / rank ** POPULARITY_EXPONENT`` (rank 1 = most popular).
POPULARITY_EXPONENT = 1.5
#: Mean number of images (listings) per product.
MEAN_LISTINGS = 3.0

#: Fill colours of the named colours (saturated and far apart, so a small CNN can tell them apart).
RGB: dict[str, tuple[int, int, int]] = {
    "red": (210, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 215, 40),
    "green": (35, 150, 60),
    "blue": (35, 75, 205),
    "purple": (125, 45, 165),
    "pink": (245, 125, 185),
    "black": (30, 30, 30),
}
OUTLINE = (55, 55, 55)
BACKGROUNDS: tuple[tuple[int, int, int], ...] = ((252, 252, 252), (246, 244, 238), (240, 244, 248))

#: Called as ``progress(images_written, images_total)``.
ProgressCallback = Callable[[int, int], None]


class DemoDatasetError(ValueError):
    """The demo dataset cannot be written where or how it was asked (message says why)."""


@dataclass(frozen=True)
class DemoQuery:
    """One generated query: what the captions ask of the target, relative to the reference."""

    category: str
    split: str
    candidate: str
    target: str
    captions: tuple[str, str]
    requested: dict[str, str]

    def caption_entry(self) -> dict:
        """The FashionIQ ``cap.*.json`` entry (no "target" in the test split)."""
        entry: dict = {"candidate": self.candidate}
        if self.split != "test":
            entry["target"] = self.target
        entry["captions"] = list(self.captions)
        return entry


@dataclass
class DemoSpec:
    """Everything a demo dataset holds except the pixels."""

    seed: int
    per_category: int
    queries_per_image: float
    attributes: dict[str, dict[str, str]]
    splits: dict[tuple[str, str], list[str]]
    queries: list[DemoQuery]


@dataclass
class DemoSummary:
    """What :func:`make_demo_dataset` wrote."""

    out: Path
    seed: int
    per_category: int
    images: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> split -> count
    queries: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> split -> count
    near_targets: dict[str, dict] = field(default_factory=dict)  # split -> near_target_stats(...)
    seconds: float = 0.0

    @property
    def image_count(self) -> int:
        return sum(sum(per_split.values()) for per_split in self.images.values())

    @property
    def query_count(self) -> int:
        return sum(sum(per_split.values()) for per_split in self.queries.values())

    def queries_per_split(self) -> dict[str, int]:
        return {split: sum(self.queries[c].get(split, 0) for c in self.queries) for split in SPLITS}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["out"] = str(self.out)
        data["image_count"] = self.image_count
        data["query_count"] = self.query_count
        data["queries_per_split"] = self.queries_per_split()
        return data


# --------------------------------------------------------------------------------------------------
# The specification: attributes, splits, queries and captions


def image_name(number: int) -> str:
    """The ASIN-like name of the ``number``-th demo image (``B0DEMO0001``)."""
    return f"{NAME_PREFIX}{number:04d}"


def _catalogue(rng: random.Random, category: str, count: int) -> list[dict[str, str]]:
    """``count`` image attribute dicts of ``category``: products of popular values, each listed several times."""
    weights: dict[str, tuple[list[str], list[float]]] = {}
    for attribute in oracle.ATTRIBUTES:
        values = list(oracle.attribute_values(attribute, category))
        rng.shuffle(values)  # this category's popularity order
        weights[attribute] = (values, [1 / (rank + 1) ** POPULARITY_EXPONENT for rank in range(len(values))])
    images: list[dict[str, str]] = []
    while len(images) < count:
        product = {"category": category} | {
            attribute: rng.choices(values, weights=w)[0] for attribute, (values, w) in weights.items()
        }
        listings = 1
        while rng.random() < 1 - 1 / MEAN_LISTINGS:
            listings += 1
        images.extend(dict(product) for _ in range(listings))
    return images[:count]


def build_demo_spec(*, seed: int = 0, per_category: int = 400, queries_per_image: float = 1.0) -> DemoSpec:
    """The attributes, splits and queries of the demo dataset for ``seed`` (no images drawn).

    Each category gets ``per_category`` images (a catalogue: see the module docstring) split 60/20/20 into
    train/val/test, and each split about ``queries_per_image`` queries per image: pairs of images of the
    same category and split that differ in 1 to 3 attributes. Raises DemoDatasetError for a
    ``per_category`` below 10 or a negative ratio.
    """
    if per_category < MIN_PER_CATEGORY:
        raise DemoDatasetError(f"per_category must be at least {MIN_PER_CATEGORY}, got {per_category}")
    if queries_per_image < 0:
        raise DemoDatasetError(f"queries_per_image must not be negative, got {queries_per_image}")
    rng = random.Random(seed)
    attributes: dict[str, dict[str, str]] = {}
    splits: dict[tuple[str, str], list[str]] = {}
    queries: list[DemoQuery] = []
    number = 0
    for category in oracle.CATEGORIES:
        names = []
        for image_attributes in _catalogue(rng, category, per_category):
            number += 1
            name = image_name(number)
            attributes[name] = image_attributes
            names.append(name)
        rng.shuffle(names)
        n_train = round(per_category * SPLIT_FRACTIONS["train"])
        n_val = round(per_category * SPLIT_FRACTIONS["val"])
        bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, None)}
        for split in SPLITS:
            start, stop = bounds[split]
            members = sorted(names[start:stop])
            splits[(category, split)] = members
            count = round(queries_per_image * len(members))
            queries.extend(_make_queries(rng, category, split, members, attributes, count))
    return DemoSpec(seed, per_category, queries_per_image, attributes, splits, queries)


def near_targets(spec: DemoSpec, query: DemoQuery) -> list[str]:
    """The images of the query's split and category, other than its target and reference, that satisfy it."""
    reference = spec.attributes[query.candidate]
    return [
        name
        for name in spec.splits[(query.category, query.split)]
        if name not in (query.candidate, query.target)
        and oracle.satisfies(spec.attributes[name], reference, query.requested)
    ]


def near_target_stats(spec: DemoSpec) -> dict[str, dict]:
    """Per split: how many near-targets (:func:`near_targets`) its queries have.

    ``{split: {"queries", "mean", "median", "max", "with_any" (share of queries with at least one),
    "exact_mean" (near-targets whose attributes all equal the target's: indistinguishable from it),
    "histogram" ({count: queries})}}``.
    """
    stats: dict[str, dict] = {}
    for split in SPLITS:
        counts: list[int] = []
        exact: list[int] = []
        for query in (q for q in spec.queries if q.split == split):
            found = near_targets(spec, query)
            counts.append(len(found))
            target = spec.attributes[query.target]
            exact.append(sum(1 for name in found if spec.attributes[name] == target))
        if not counts:
            stats[split] = {"queries": 0}
            continue
        ordered = sorted(counts)
        middle = len(ordered) // 2
        median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        histogram: dict[int, int] = {}
        for count in ordered:
            histogram[count] = histogram.get(count, 0) + 1
        stats[split] = {
            "queries": len(counts),
            "mean": round(sum(counts) / len(counts), 3),
            "median": median,
            "max": ordered[-1],
            "with_any": round(sum(1 for c in counts if c) / len(counts), 3),
            "exact_mean": round(sum(exact) / len(exact), 3),
            "histogram": histogram,
        }
    return stats


def _differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [attribute for attribute in oracle.ATTRIBUTES if a[attribute] != b[attribute]]


def _make_queries(
    rng: random.Random,
    category: str,
    split: str,
    names: list[str],
    attributes: dict[str, dict[str, str]],
    count: int,
) -> list[DemoQuery]:
    """``count`` distinct (reference, target) pairs, as many differing in 1, 2 and 3 attributes as can be."""
    by_distance: dict[int, list[tuple[str, str]]] = {d: [] for d in range(1, MAX_DIFFERENCES + 1)}
    for reference in names:
        for target in names:
            if reference != target:
                distance = len(_differences(attributes[reference], attributes[target]))
                if distance in by_distance:
                    by_distance[distance].append((reference, target))
    for pairs in by_distance.values():
        rng.shuffle(pairs)
    queries: list[DemoQuery] = []
    while len(queries) < count:
        available = [d for d, pairs in by_distance.items() if pairs]
        if not available:
            break
        reference, target = by_distance[rng.choice(available)].pop()
        ref_attrs, tgt_attrs = attributes[reference], attributes[target]
        requested = {a: tgt_attrs[a] for a in _differences(ref_attrs, tgt_attrs)}
        captions = make_captions(rng, ref_attrs, requested)
        queries.append(DemoQuery(category, split, reference, target, captions, requested))
    return queries


#: Share of clauses phrased against the reference ("has longer sleeves", "is red instead of blue") where such a
#: phrase exists, as most of FashionIQ's captions are.
RELATIVE_SHARE = 0.75


def _clause(
    rng: random.Random, reference: dict[str, str], attribute: str, value: str, *, opening: bool = False
) -> oracle.Phrase:
    """A phrase asking for ``attribute == value``: relative to the reference (comparative, "instead of",
    "without the") with probability :data:`RELATIVE_SHARE` where one applies, else absolute ("is red").
    An ``opening`` clause starts a caption, so it is never a "with" clause."""
    category = reference["category"]
    phrases = oracle.phrases_for(attribute, value, category=category, reference_value=reference[attribute])
    if attribute in ("sleeves", "length"):
        scale = oracle.attribute_values(attribute, category)
        step = scale.index(value) - scale.index(reference[attribute])
        phrases += oracle.comparative_phrases(attribute, step, category=category)
    if opening:
        phrases = [p for p in phrases if not p.is_with_clause]
    relative = [p for p in phrases if p.is_relative]
    absolute = [p for p in phrases if not p.is_relative]
    pool = relative if relative and (not absolute or rng.random() < RELATIVE_SHARE) else absolute
    return rng.choice(pool)


def _join(clauses: list[oracle.Phrase]) -> str:
    """"A, B and C"; a "with" clause follows a clause that is not one after a space ("is red with stripes")."""
    text = clauses[0].text
    for index, clause in enumerate(clauses[1:], start=1):
        if clause.is_with_clause and not clauses[index - 1].is_with_clause:
            text += " " + clause.text
        else:
            text += (" and " if index == len(clauses) - 1 else ", ") + clause.text
    return text


def make_captions(rng: random.Random, reference: dict[str, str], requested: dict[str, str]) -> tuple[str, str]:
    """Two FashionIQ-style captions asking for ``requested`` (1 to 3 attributes) relative to ``reference``.

    The requested attributes are split between the captions, so neither repeats the other; a single one is
    asked in one caption while the other says the rest stays ("is otherwise the same"). Most clauses read
    against the reference (:data:`RELATIVE_SHARE`): "has longer sleeves", "is red instead of blue".
    """
    if not 1 <= len(requested) <= MAX_DIFFERENCES:
        raise ValueError(f"between 1 and {MAX_DIFFERENCES} requested attributes, got {requested}")
    attributes = list(requested)
    rng.shuffle(attributes)
    if len(attributes) == 1:
        attribute = attributes[0]
        asked = _clause(rng, reference, attribute, requested[attribute], opening=True).text
        keep = rng.choice(oracle.keep_phrases()).text
        return (asked, keep) if rng.random() < 0.8 else (keep, asked)
    cut = 1 if len(attributes) == 2 else rng.choice((1, 2))
    groups = (attributes[:cut], attributes[cut:])
    captions = []
    for group in groups:
        clauses = [_clause(rng, reference, a, requested[a], opening=(i == 0)) for i, a in enumerate(group)]
        # A caption opens with a verb ("is red with stripes", not "with stripes is red").
        clauses.sort(key=lambda phrase: phrase.is_with_clause)
        captions.append(_join(clauses))
    return captions[0], captions[1]


# --------------------------------------------------------------------------------------------------
# Drawing


class _Canvas:
    """Coordinates in the 96x120 design frame, shifted by a per-image offset and scaled to the image."""

    def __init__(self, dx: int, dy: int) -> None:
        self.dx, self.dy = dx, dy

    def pts(self, points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        return [((x + self.dx) * SCALE, (y + self.dy) * SCALE) for x, y in points]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [(x0 + self.dx) * SCALE, (y0 + self.dy) * SCALE, (x1 + self.dx) * SCALE, (y1 + self.dy) * SCALE]


def _mirror(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(96 - x, y) for x, y in points]


# Hem line (y) per length, and the body half-widths: tops are T-shapes, dresses a bodice and a flared skirt.
_TOP_HEM = {"cropped": 54, "regular": 76, "long": 98}
_DRESS_HEM = {"short": 72, "knee": 93, "long": 114}
_DRESS_HEM_HALF_WIDTH = {"short": 25, "knee": 29, "long": 33}


def _pattern_fill(size: tuple[int, int], base: tuple[int, int, int], pattern: str, rng: random.Random):
    """A full-canvas image in the base colour, overlaid with the pattern in a contrasting colour."""
    layer = PILImage.new("RGB", size, base)
    luminance = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]
    contrast = (250, 250, 250) if luminance < 150 else (45, 45, 60)
    draw = ImageDraw.Draw(layer)
    width, height = size
    phase, k = rng.randrange(8) * SCALE, SCALE  # spacing and strokes in design-frame pixels, scaled
    if pattern == "stripes":
        for y in range(phase - 8 * k, height, 8 * k):
            draw.rectangle([0, y, width, y + 2 * k], fill=contrast)
    elif pattern == "dots":
        for row, y in enumerate(range(phase - 9 * k, height + 9 * k, 9 * k)):
            offset = 4 * k if row % 2 else 0
            for x in range(offset - 9 * k, width + 9 * k, 9 * k):
                draw.ellipse([x - 2 * k, y - 2 * k, x + 2 * k, y + 2 * k], fill=contrast)
    elif pattern == "checks":
        for v in range(phase - 10 * k, max(width, height), 10 * k):
            draw.rectangle([v, 0, v + k, height], fill=contrast)
            draw.rectangle([0, v, width, v + k], fill=contrast)
    return layer


def draw_garment(attributes: dict[str, str], *, rng: random.Random) -> PILImage.Image:
    """Draw one garment with the given attributes; ``rng`` only jitters position, pattern phase and backdrop."""
    category = attributes["category"]
    canvas = _Canvas(rng.randint(-3, 3), rng.randint(-2, 2))
    background = BACKGROUNDS[rng.randrange(len(BACKGROUNDS))]
    mask = PILImage.new("L", IMAGE_SIZE, 0)
    m = ImageDraw.Draw(mask)
    sleeves = attributes["sleeves"]
    shoulder = 13 if sleeves == "sleeveless" else 20  # half-width at the shoulders; straps when sleeveless
    top_y = 14

    if category == "dress":
        waist_y, hem_y = 50, _DRESS_HEM[attributes["length"]]
        hem_half = _DRESS_HEM_HALF_WIDTH[attributes["length"]]
        m.polygon(
            canvas.pts(
                [
                    (48 - shoulder, top_y),
                    (48 + shoulder, top_y),
                    (48 + 16, 32),
                    (48 + 13, waist_y),
                    (48 - 13, waist_y),
                    (48 - 16, 32),
                ]
            ),
            fill=255,
        )
        m.polygon(
            canvas.pts(
                [(48 - 13, waist_y - 1), (48 + 13, waist_y - 1), (48 + hem_half, hem_y), (48 - hem_half, hem_y)]
            ),
            fill=255,
        )
    else:
        hem_y = _TOP_HEM[attributes["length"]]
        half = 19 if category == "shirt" else 17
        m.polygon(
            canvas.pts(
                [
                    (48 - shoulder, top_y),
                    (48 + shoulder, top_y),
                    (48 + half, 32),
                    (48 + half, hem_y),
                    (48 - half, hem_y),
                    (48 - half, 32),
                ]
            ),
            fill=255,
        )

    if sleeves != "sleeveless":
        if sleeves == "short":
            left = [(29, top_y), (15, 31), (23, 38), (31, 31)]
        else:
            left = [(29, top_y), (11, 64), (19, 67), (32, 33)]
        for sleeve in (left, _mirror(left)):
            m.polygon(canvas.pts(sleeve), fill=255)

    neckline = attributes["neckline"]
    if neckline == "round":
        m.ellipse(canvas.box(39, top_y - 8, 57, top_y + 8), fill=0)
    elif neckline == "v-neck":
        m.polygon(canvas.pts([(38, top_y - 1), (58, top_y - 1), (48, top_y + 20)]), fill=0)
    else:
        m.ellipse(canvas.box(42, top_y - 5, 54, top_y + 4), fill=0)

    image = PILImage.new("RGB", IMAGE_SIZE, background)
    fill = _pattern_fill(IMAGE_SIZE, RGB[attributes["colour"]], attributes["pattern"], rng)
    image.paste(fill, (0, 0), mask)
    image.paste(OUTLINE, (0, 0), mask.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(SCALE - 1 | 1)))

    draw = ImageDraw.Draw(image)
    if category == "dress":
        draw.line(canvas.pts([(48 - 13, 50), (48 + 13, 50)]), fill=OUTLINE, width=SCALE)
    if category == "shirt":
        placket_top = top_y + 9 if neckline == "collar" else top_y + (21 if neckline == "v-neck" else 8)
        draw.line(canvas.pts([(48, placket_top), (48, hem_y - 1)]), fill=OUTLINE, width=SCALE)
        for y in range(placket_top + 4, hem_y - 2, 8):
            draw.ellipse(canvas.box(46, y - 1, 50, y + 3), fill=(240, 240, 240), outline=OUTLINE, width=SCALE // 2)
        draw.rectangle(canvas.box(54, 30, 62, 39), outline=OUTLINE, width=SCALE // 2)  # chest pocket
    if neckline == "collar":
        collar = (242, 242, 242)
        flap = [(42, top_y - 3), (48, top_y + 7), (41, top_y + 11), (35, top_y + 1)]
        for points in (flap, _mirror(flap)):
            draw.polygon(canvas.pts(points), fill=collar, outline=OUTLINE, width=SCALE // 2)
    return image


# --------------------------------------------------------------------------------------------------
# Writing the folder


def is_demo_folder(path: Path) -> bool:
    """True when ``path`` holds a manifest written by this generator."""
    try:
        manifest = json.loads((path / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == GENERATOR_ID


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DemoDatasetError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not is_demo_folder(out):
            raise DemoDatasetError(
                f"{out} is not empty and is not a demo dataset folder (no {MANIFEST_NAME} from this "
                "generator): choose a new or empty folder"
            )
        # A previous demo dataset: remove what the generator wrote, so a smaller re-run leaves no strays.
        for folder in ("images", "image_splits", "captions"):
            shutil.rmtree(out / folder, ignore_errors=True)
        for name in ("attributes.json", MANIFEST_NAME):
            (out / name).unlink(missing_ok=True)
    for folder in ("images", "image_splits", "captions"):
        (out / folder).mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, data: object, *, indent: int | None = None) -> None:
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def make_demo_dataset(
    out: Path,
    *,
    seed: int = 0,
    per_category: int = 400,
    queries_per_image: float = 1.0,
    progress: ProgressCallback | None = None,
) -> DemoSummary:
    """Write the demo dataset for ``seed`` into ``out`` (see the module docstring for the layout).

    ``out`` must be missing, empty, or a previous demo dataset folder (whose generated files are replaced).
    The same arguments give byte-identical files. ``progress(done, total)`` is called as images are written.
    Raises DemoDatasetError for a non-empty foreign folder or bad arguments.
    """
    started = time.perf_counter()
    out = Path(out).resolve()
    spec = build_demo_spec(seed=seed, per_category=per_category, queries_per_image=queries_per_image)
    _prepare(out)

    total = len(spec.attributes)
    for done, (name, attributes) in enumerate(spec.attributes.items(), start=1):
        image = draw_garment(attributes, rng=random.Random(f"{seed}:{name}"))
        image.save(out / "images" / f"{name}.png", format="PNG", optimize=False, compress_level=6)
        if progress is not None:
            progress(done, total)

    summary = DemoSummary(out=out, seed=seed, per_category=per_category, near_targets=near_target_stats(spec))
    for (category, split), names in spec.splits.items():
        _write_json(out / "image_splits" / f"split.{category}.{split}.json", names)
        entries = [q.caption_entry() for q in spec.queries if q.category == category and q.split == split]
        _write_json(out / "captions" / f"cap.{category}.{split}.json", entries)
        summary.images.setdefault(category, {})[split] = len(names)
        summary.queries.setdefault(category, {})[split] = len(entries)
    _write_json(out / "attributes.json", spec.attributes, indent=1)
    _write_json(
        out / MANIFEST_NAME,
        {
            "generator": GENERATOR_ID,
            "format_version": FORMAT_VERSION,
            "seed": seed,
            "per_category": per_category,
            "queries_per_image": queries_per_image,
            "near_targets": summary.near_targets,
        },
        indent=2,
    )
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
