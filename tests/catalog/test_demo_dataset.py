"""The embedded demo dataset: exact FashionIQ layout, determinism, visible attributes, the command."""

from __future__ import annotations

import hashlib
import json
import random
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from hpbench.catalog import oracle
from hpbench.catalog.demo import (
    RGB,
    DemoDatasetError,
    build_demo_spec,
    draw_garment,
    make_demo_dataset,
    near_target_stats,
    near_targets,
)

CATEGORIES = ("dress", "shirt", "toptee")
SPLITS = ("train", "val", "test")
PER_CATEGORY = 25


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "out"
    make_demo_dataset(root, seed=0, per_category=PER_CATEGORY)
    return root


def read_json(path: Path):
    return json.loads(path.read_text())


def folder_hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_it_writes_the_exact_fashioniq_layout(demo_root):
    files = set(folder_hashes(demo_root))
    expected = {"attributes.json", "demo_manifest.json"}
    expected |= {f"image_splits/split.{c}.{s}.json" for c in CATEGORIES for s in SPLITS}
    expected |= {f"captions/cap.{c}.{s}.json" for c in CATEGORIES for s in SPLITS}
    assert {f for f in files if not f.startswith("images/")} == expected
    pngs = {f for f in files if f.startswith("images/")}
    assert len(pngs) == 3 * PER_CATEGORY
    assert all(f.endswith(".png") and f.removeprefix("images/").startswith("B0DEMO") for f in pngs)


def test_split_files_partition_each_category_60_20_20(demo_root):
    attributes = read_json(demo_root / "attributes.json")
    for category in CATEGORIES:
        splits = {s: read_json(demo_root / "image_splits" / f"split.{category}.{s}.json") for s in SPLITS}
        assert [len(splits[s]) for s in SPLITS] == [15, 5, 5]
        members = [name for names in splits.values() for name in names]
        assert len(set(members)) == len(members) == PER_CATEGORY
        assert {attributes[name]["category"] for name in members} == {category}


def test_train_and_val_captions_have_exactly_the_fashioniq_fields(demo_root):
    for category in CATEGORIES:
        for split in ("train", "val"):
            names = set(read_json(demo_root / "image_splits" / f"split.{category}.{split}.json"))
            entries = read_json(demo_root / "captions" / f"cap.{category}.{split}.json")
            assert entries, (category, split)
            for entry in entries:
                assert list(entry) == ["candidate", "target", "captions"]
                assert entry["candidate"] in names and entry["target"] in names
                assert entry["candidate"] != entry["target"]
                assert len(entry["captions"]) == 2 and all(c.strip() for c in entry["captions"])


def test_the_test_split_has_no_target(demo_root):
    for category in CATEGORIES:
        names = set(read_json(demo_root / "image_splits" / f"split.{category}.test.json"))
        entries = read_json(demo_root / "captions" / f"cap.{category}.test.json")
        assert entries
        for entry in entries:
            assert list(entry) == ["candidate", "captions"]
            assert entry["candidate"] in names


def test_attributes_json_gives_every_image_valid_ground_truth(demo_root):
    attributes = read_json(demo_root / "attributes.json")
    names = {path.stem for path in (demo_root / "images").iterdir()}
    assert set(attributes) == names
    for values in attributes.values():
        assert list(values) == ["category", "colour", "pattern", "sleeves", "neckline", "length"]
        for attribute in oracle.ATTRIBUTES:
            assert values[attribute] in oracle.attribute_values(attribute, values["category"])


def test_images_are_384_by_480_rgb_pngs_on_a_light_background(demo_root):
    for path in sorted((demo_root / "images").iterdir())[:10]:
        with PILImage.open(path) as image:
            # Four times the 96x120 design frame: sharp when the voting page enlarges an image to 480 px.
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (384, 480))
            assert min(image.getpixel((1, 1))) >= 235


def test_queries_pair_images_that_differ_in_one_to_three_attributes():
    spec = build_demo_spec(seed=0, per_category=PER_CATEGORY)
    assert spec.queries
    for query in spec.queries:
        reference, target = spec.attributes[query.candidate], spec.attributes[query.target]
        differing = {a for a in oracle.ATTRIBUTES if reference[a] != target[a]}
        assert 1 <= len(differing) <= 3
        assert query.requested == {a: target[a] for a in oracle.ATTRIBUTES if a in differing}
        assert reference["category"] == target["category"] == query.category


def test_queries_have_several_near_targets_as_fashioniq_queries_do():
    spec = build_demo_spec(seed=0, per_category=400)
    stats = near_target_stats(spec)
    for split in ("train", "val", "test"):
        assert stats[split]["queries"] == sum(1 for q in spec.queries if q.split == split)
        assert stats[split]["mean"] >= 3, stats[split]  # several per query on average
        assert stats[split]["with_any"] >= 0.75, stats[split]
        assert stats[split]["exact_mean"] >= 1, stats[split]
        assert sum(stats[split]["histogram"].values()) == stats[split]["queries"]
    assert stats["train"]["mean"] > stats["val"]["mean"]  # a larger gallery holds more of them


def test_a_near_target_satisfies_the_query_and_is_neither_its_target_nor_its_reference():
    spec = build_demo_spec(seed=1, per_category=60)
    found = 0
    for query in spec.queries:
        reference = spec.attributes[query.candidate]
        members = spec.splits[(query.category, query.split)]
        near = near_targets(spec, query)
        assert query.target not in near and query.candidate not in near
        assert set(near) <= set(members)
        for name in members:
            if name not in (query.target, query.candidate):
                assert (name in near) == oracle.satisfies(spec.attributes[name], reference, query.requested)
        found += len(near)
    assert found > len(spec.queries)


def test_the_summary_reports_near_targets_per_split(demo_root):
    manifest = read_json(demo_root / "demo_manifest.json")
    assert set(manifest["near_targets"]) == set(SPLITS)
    assert manifest["near_targets"]["train"]["queries"] > 0


def test_each_split_has_about_as_many_queries_as_images():
    spec = build_demo_spec(seed=0, per_category=100)
    for (category, split), names in spec.splits.items():
        count = sum(1 for q in spec.queries if (q.category, q.split) == (category, split))
        assert count == len(names), (category, split)


def test_queries_per_image_scales_the_number_of_queries():
    spec = build_demo_spec(seed=0, per_category=100, queries_per_image=0.5)
    assert sum(1 for q in spec.queries if q.split == "train") == 3 * 30


def test_the_same_seed_gives_byte_identical_files(tmp_path, demo_root):
    make_demo_dataset(tmp_path / "again", seed=0, per_category=PER_CATEGORY)
    assert folder_hashes(tmp_path / "again") == folder_hashes(demo_root)


def test_a_different_seed_gives_different_files(tmp_path, demo_root):
    make_demo_dataset(tmp_path / "other", seed=1, per_category=PER_CATEGORY)
    first, second = folder_hashes(demo_root), folder_hashes(tmp_path / "other")
    assert first["attributes.json"] != second["attributes.json"]
    assert first["captions/cap.dress.train.json"] != second["captions/cap.dress.train.json"]
    assert sum(first[f] != second[f] for f in first if f.startswith("images/")) > PER_CATEGORY


def test_rerunning_into_a_demo_folder_replaces_it_without_strays(tmp_path, demo_root):
    out = tmp_path / "out"
    make_demo_dataset(out, seed=0, per_category=40)
    make_demo_dataset(out, seed=0, per_category=PER_CATEGORY)
    assert folder_hashes(out) == folder_hashes(demo_root)


def test_it_refuses_a_non_empty_folder_that_is_not_a_demo_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoDatasetError, match="not a demo dataset folder"):
        make_demo_dataset(tmp_path, seed=0, per_category=PER_CATEGORY)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_it_rejects_too_few_images_per_category(tmp_path):
    with pytest.raises(DemoDatasetError, match="per_category must be at least 10"):
        make_demo_dataset(tmp_path / "out", per_category=3)


def test_it_reports_progress_up_to_the_image_count(tmp_path):
    calls = []
    make_demo_dataset(tmp_path / "out", per_category=10, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (1, 30) and calls[-1] == (30, 30) and len(calls) == 30


BASE = {
    "category": "toptee",
    "colour": "blue",
    "pattern": "plain",
    "sleeves": "short",
    "neckline": "round",
    "length": "regular",
}


def draw(**changes) -> PILImage.Image:
    return draw_garment(BASE | changes, rng=random.Random("fixed"))


def test_every_attribute_value_changes_the_drawing():
    for category in CATEGORIES:
        base = BASE | {"category": category, "length": oracle.LENGTHS[category][1]}
        drawings = {}
        for attribute in oracle.ATTRIBUTES:
            for value in oracle.attribute_values(attribute, category):
                image = draw_garment(base | {attribute: value}, rng=random.Random("fixed"))
                drawings[(attribute, value)] = image.tobytes()
        assert len(set(drawings.values())) == len(drawings) - len(oracle.ATTRIBUTES) + 1, category


def test_a_plain_garment_is_mostly_its_named_colour():
    for colour, rgb in RGB.items():
        counts = sorted(draw(colour=colour).getcolors(384 * 480), reverse=True)
        garment = [c for c in counts if min(c[1]) < 235]  # skip the light background
        assert garment[0][1] == rgb, colour


def lowest_garment_row(image: PILImage.Image) -> int:
    grey = image.convert("L")
    return max(y for y in range(image.height) if min(grey.getpixel((x, y)) for x in range(image.width)) < 200)


def test_longer_lengths_reach_lower():
    rows = [lowest_garment_row(draw(sleeves="sleeveless", length=v)) for v in oracle.LENGTHS["toptee"]]
    assert rows == sorted(rows) and len(set(rows)) == 3


def run_command(*args) -> str:
    out = StringIO()
    call_command("make_demo_dataset", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_its_summary_as_json(tmp_path):
    summary = json.loads(run_command(str(tmp_path / "demo"), "--per-category", "20", "--seed", "3", "--json"))
    assert summary["seed"] == 3 and summary["image_count"] == 60
    assert summary["images"]["shirt"] == {"train": 12, "val": 4, "test": 4}
    assert summary["queries_per_split"]["train"] == 36
    assert summary["out"] == str((tmp_path / "demo").resolve())
    assert len(list((tmp_path / "demo" / "images").iterdir())) == 60


def test_the_command_prints_a_human_summary(tmp_path):
    text = run_command(str(tmp_path / "demo"), "--per-category", "10")
    assert "30 images" in text and str((tmp_path / "demo").resolve()) in text
    assert "near-targets per query" in text


def test_the_command_refuses_a_foreign_folder_with_a_clear_error(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"not ours")
    with pytest.raises(CommandError, match=r"photos is not empty and is not a demo dataset folder"):
        run_command(str(tmp_path / "photos"), "--per-category", "10", "--json")
