"""Small benchmarks and dataset splits whose score files and figures are worked out by hand in the tests."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.uploadedfile import SimpleUploadedFile

from hpbench.catalog.models import Dataset, Image, Query
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store


def tiny_benchmark(dataset: Dataset):
    """Images a..f; 3 pairs: (ref a, "t0", {b, c} vs {d, e}, human 1), (ref a, "t1", {d, f} vs {b, c}, human 2),
    (ref f, "t2", {a, b} vs {c, d}, human 0 = tie)."""
    ids = {}
    for name in "abcdef":
        ids[name] = Image.objects.create(dataset=dataset, name=name, category="shirt", split="val",
                                         file_path=f"{name}.png").pk
    pairs = [
        PairSpec(reference_id=ids["a"], text="t0", set1=(ids["b"], ids["c"]), set2=(ids["d"], ids["e"]), preference=1),
        PairSpec(reference_id=ids["a"], text="t1", set1=(ids["d"], ids["f"]), set2=(ids["b"], ids["c"]), preference=2),
        PairSpec(reference_id=ids["f"], text="t2", set1=(ids["a"], ids["b"]), set2=(ids["c"], ids["d"]), preference=0),
    ]
    return benchmark_store(name="tiny", source="imported", dataset=dataset, pairs=pairs).benchmark


#: The candidates of each question of :func:`tiny_benchmark`.
CANDIDATES = {0: "bcde", 1: "bcdf", 2: "abcd"}


def relevance_rows(values: dict[str, float], *, label: str = "tiny-v1") -> list[dict]:
    """Every requested row, with relevance ``values[image]`` whatever the question."""
    return [
        {"question": f"{label}/{q}", "image": i, "score": values[i]} for q, imgs in CANDIDATES.items() for i in imgs
    ]


def jsonl_file(rows: list, name: str = "scores.jsonl") -> SimpleUploadedFile:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    return SimpleUploadedFile(name, text.encode())


def parquet_file(table: pa.Table, name: str = "scores.parquet") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return SimpleUploadedFile(name, buffer.getvalue())


def fashioniq_split(tmp_path) -> Dataset:
    """FashionIQ-like val split: dress gallery d0..d11, queries dress.val.0 (d0 -> d1) and dress.val.1 (d2 -> d3);
    shirt gallery s0..s2, query shirt.val.0 (s0 -> s2)."""
    dataset = Dataset.objects.create(name="fiq-split", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))
    ids = {}
    for category, names in (("dress", [f"d{i}" for i in range(12)]), ("shirt", ["s0", "s1", "s2"])):
        for name in names:
            ids[name] = Image.objects.create(dataset=dataset, name=name, category=category, split="val",
                                             file_path=f"{name}.png").pk
    for key, category, ref, target in (("dress.val.0", "dress", "d0", "d1"), ("dress.val.1", "dress", "d2", "d3"),
                                       ("shirt.val.0", "shirt", "s0", "s2")):
        Query.objects.create(dataset=dataset, key=key, split="val", category=category, reference_id=ids[ref],
                             target_id=ids[target], captions=["is red", "has sleeves"])
    return dataset


def cirr_split(tmp_path) -> Dataset:
    """CIRR-like val split: images c0..c4; pair 7 (c0 -> c2, subset c0 c1 c2 c3), pair 9 (c4 -> c1, subset c4 c1 c3)."""
    dataset = Dataset.objects.create(name="cirr-split", kind=Dataset.Kind.CIRR, image_root=str(tmp_path))
    ids = {n: Image.objects.create(dataset=dataset, name=n, split="val", file_path=f"{n}.png").pk
           for n in ("c0", "c1", "c2", "c3", "c4")}
    Query.objects.create(dataset=dataset, key="val.7", split="val", reference_id=ids["c0"], target_id=ids["c2"],
                         captions=["  two dogs "], pairid=7, subset_members=["c0", "c1", "c2", "c3"])
    Query.objects.create(dataset=dataset, key="val.9", split="val", reference_id=ids["c4"], target_id=ids["c1"],
                         captions=["a cat"], pairid=9, subset_members=["c4", "c1", "c3"])
    return dataset


def json_file(payload: dict, name: str = "rankings.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, json.dumps(payload).encode())
