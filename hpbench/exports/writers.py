"""File writers for exports. Each takes rows in chunks (``write(rows)``) and is finished with ``close()``.

Parquet, JSONL, CSV and the Hugging Face folder keep one chunk in memory at a time (Parquet: one row group
per chunk). The HP-FashionIQ layout is a single nested JSON object, so that writer holds the questions
(a few hundred bytes each) until ``close()``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

Columns = Sequence[tuple[str, str, str]]

_ARROW = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "list[str]": pa.list_(pa.string()),
}
_HF = {"str": "string", "int": "int64", "float": "float64", "bool": "bool", "datetime": "timestamp[us, tz=UTC]"}


class RowWriter(Protocol):
    def write(self, rows: list[dict]) -> None: ...

    def close(self) -> None: ...


def arrow_schema(columns: Columns) -> pa.Schema:
    """The explicit Parquet schema of a level's columns (descriptions kept as field metadata)."""
    return pa.schema(
        [pa.field(name, _ARROW[kind], nullable=True, metadata={"description": doc}) for name, kind, doc in columns]
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class ParquetRows:
    """Parquet with an explicit schema; each ``write`` becomes one row group."""

    def __init__(self, path: str | Path, columns: Columns) -> None:
        self.names = [c[0] for c in columns]
        self.schema = arrow_schema(columns)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        arrays = [pa.array([r[n] for r in rows], type=f.type) for n, f in zip(self.names, self.schema, strict=True)]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=len(rows))

    def close(self) -> None:
        self._writer.close()


class JsonlRows:
    """One JSON object per line (UTF-8); datetimes as ISO 8601 UTC."""

    def __init__(self, path: str | Path, columns: Columns) -> None:
        self.names = [c[0] for c in columns]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, rows: list[dict]) -> None:
        self._file.writelines(
            json.dumps({n: r[n] for n in self.names}, default=_plain, ensure_ascii=False) + "\n" for r in rows
        )

    def close(self) -> None:
        self._file.close()


def csv_cell(value: Any) -> str:
    """How a value is written to CSV: lists/dicts as JSON text, booleans true/false, null as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.datetime):
        return _plain(value)
    return str(value)


class CsvRows:
    """CSV with a header row; see :func:`csv_cell` for the encoding of values."""

    def __init__(self, path: str | Path, columns: Columns) -> None:
        self.names = [c[0] for c in columns]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self._csv = csv.writer(self._file)
        self._csv.writerow(self.names)

    def write(self, rows: list[dict]) -> None:
        self._csv.writerows([csv_cell(r[n]) for n in self.names] for r in rows)

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------------------------
# Hugging Face dataset folder
# --------------------------------------------------------------------------------------------

HF_DATA_FILE = "data/train-00000-of-00001.parquet"

#: Columns naming images -> the Image column the Hugging Face folder adds beside them (the file's bytes, so the
#: dataset viewer shows thumbnails and ``datasets`` decodes them to PIL images).
HF_IMAGE_COLUMNS = {
    "reference_image": "reference",
    "target_image": "target",
    "set_a_images": "set_a",
    "set_b_images": "set_b",
    "set1_images": "set1",
    "set2_images": "set2",
}
_IMAGE_STRUCT = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


class ImageSource(Protocol):
    def __call__(self, dataset: str, names: set[str]) -> dict[str, tuple[str, bytes] | None]: ...


def hf_columns(columns: Columns) -> list[tuple[str, str, str]]:
    """The level's columns plus one Image column (``image`` or ``list[image]``) per column naming images."""
    out = list(columns)
    for name, kind, _doc in columns:
        if name in HF_IMAGE_COLUMNS:
            image_kind = "list[image]" if kind == "list[str]" else "image"
            what = "The images" if kind == "list[str]" else "The image"
            out.append((HF_IMAGE_COLUMNS[name], image_kind, f"{what} named by `{name}` (file bytes; null if missing)."))
    return out


def _hf_feature(kind: str) -> dict:
    """The ``datasets`` feature of a column kind, as ``Features.to_dict()`` writes it."""
    if kind == "image":
        return {"_type": "Image"}
    if kind == "list[image]":
        return {"feature": {"_type": "Image"}, "_type": "Sequence"}
    if kind == "list[str]":
        return {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"}
    return {"dtype": _HF[kind], "_type": "Value"}


def hf_schema(columns: Columns) -> pa.Schema:
    """The Parquet schema of the Hugging Face folder: Image columns as ``{bytes, path}`` structs, and the
    ``huggingface`` schema metadata ``datasets`` reads its features from."""
    fields = []
    for name, kind, doc in columns:
        if kind == "image":
            arrow = _IMAGE_STRUCT
        elif kind == "list[image]":
            arrow = pa.list_(_IMAGE_STRUCT)
        else:
            arrow = _ARROW[kind]
        fields.append(pa.field(name, arrow, nullable=True, metadata={"description": doc}))
    features = {name: _hf_feature(kind) for name, kind, _doc in columns}
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": features}})})


class HfFolderRows:
    """A folder ``datasets.load_dataset("parquet", data_files=...)`` (or ``load_dataset(folder)``) opens:
    ``data/train-00000-of-00001.parquet`` and, on :meth:`finish`, a README.md dataset card.

    Beside each column naming images (:data:`HF_IMAGE_COLUMNS`) it writes an ``Image`` column holding the
    files' bytes, read through ``images(dataset, names)`` (rows carry their ``dataset``); an image whose file is
    missing is null. Each file is read once per export while the cache holds (``cache_bytes``).
    """

    def __init__(
        self, folder: str | Path, columns: Columns, *, images: ImageSource | None = None, cache_bytes: int = 256 << 20
    ) -> None:
        self.folder = Path(folder)
        self.columns = hf_columns(columns) if images is not None else list(columns)
        self.rows = 0
        self.nbytes = 0  # the rows' size in Arrow memory: the card's num_bytes
        self.images = images
        self._cache: dict[tuple[str, str], dict | None] = {}
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._image_columns = [(src, HF_IMAGE_COLUMNS[src]) for src, _k, _d in columns if src in HF_IMAGE_COLUMNS]
        Path(self.folder / HF_DATA_FILE).parent.mkdir(parents=True, exist_ok=True)
        self.schema = hf_schema(self.columns)
        self._writer = pq.ParquetWriter(str(self.folder / HF_DATA_FILE), self.schema, compression="zstd")

    def _load(self, rows: list[dict]) -> None:
        wanted: dict[str, set[str]] = {}
        for row in rows:
            for src, _dst in self._image_columns:
                value = row[src]
                for name in value if isinstance(value, list) else [value]:
                    if name is not None and (row["dataset"], name) not in self._cache:
                        wanted.setdefault(row["dataset"], set()).add(name)
        if self._cache_bytes > self._cache_limit:
            self._cache.clear()
            self._cache_bytes = 0
            return self._load(rows)
        for dataset, names in wanted.items():
            found = self.images(dataset, names) if self.images is not None else {}
            for name in names:
                hit = found.get(name)
                self._cache[(dataset, name)] = None if hit is None else {"bytes": hit[1], "path": hit[0]}
                self._cache_bytes += 0 if hit is None else len(hit[1])

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        self.rows += len(rows)
        if self._image_columns and self.images is not None:
            self._load(rows)
            for row in rows:
                for src, dst in self._image_columns:
                    value = row[src]
                    if isinstance(value, list):
                        row[dst] = [self._cache.get((row["dataset"], n)) for n in value]
                    else:
                        row[dst] = None if value is None else self._cache.get((row["dataset"], value))
        arrays = [pa.array([r[f.name] for r in rows], type=f.type) for f in self.schema]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.nbytes += table.nbytes
        self._writer.write_table(table, row_group_size=len(rows))

    def close(self) -> None:
        self._writer.close()

    def finish(self, *, title: str, level: str, figures: dict, filters: dict) -> None:
        (self.folder / "README.md").write_text(
            dataset_card(
                title=title, level=level, columns=self.columns, rows=self.rows, figures=figures, filters=filters,
                num_bytes=self.nbytes,
            ),
            encoding="utf-8",
        )


def _yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def dataset_card(
    *, title: str, level: str, columns: Columns, rows: int, figures: dict, filters: dict, num_bytes: int | None = None
) -> str:
    """README.md with a YAML header (``license`` left empty for the admin, ``configs``, ``dataset_info``)."""
    features = []
    for name, kind, _doc in columns:
        if kind == "list[str]":
            features.append(f"  - name: {name}\n    sequence: string")
        elif kind == "image":
            features.append(f"  - name: {name}\n    dtype: image")
        elif kind == "list[image]":
            features.append(f"  - name: {name}\n    sequence: image")
        else:
            features.append(f"  - name: {name}\n    dtype: {_yaml_str(_HF[kind])}")
    header = "\n".join(
        [
            "---",
            "# license: set by the platform admin before publishing (e.g. cc-by-4.0)",
            "license:",
            "task_categories:",
            "- image-to-image",
            "tags:",
            "- composed-image-retrieval",
            "- human-preference",
            "configs:",
            "- config_name: default",
            "  data_files:",
            "  - split: train",
            f"    path: {HF_DATA_FILE}",
            "dataset_info:",
            "  features:",
            *features,
            "  splits:",
            "  - name: train",
            *([f"    num_bytes: {num_bytes}"] if num_bytes is not None else []),
            f"    num_examples: {rows}",
            "---",
        ]
    )
    figure_lines = "\n".join(
        f"| {k} | {_fmt(v) if not isinstance(v, list) else ', '.join(v) or '-'} |" for k, v in figures.items()
    )
    field_lines = "\n".join(f"| `{name}` | {kind} | {doc} |" for name, kind, doc in columns)
    filter_text = json.dumps(filters, sort_keys=True)
    body = f"""
# {title}

Human preferences between two sets of images retrieved for a composed image retrieval query (a reference
image and a modification text), collected on hpbench. One row per **{level[:-1]}**.

## How it was collected

Annotators (crowd workers or account holders) saw the query and two result sets, each retrieved by a
model, placed left/right at random; they chose the better set (or "tie" where the campaign allowed it),
optionally rated each set 1-5 (Likert) and could flag both sets as irrelevant. Gold comparisons with a known
answer were mixed in; annotators under the campaign's gold accuracy bar were flagged and their votes
marked excluded. Annotators appear only as random pseudonyms; no crowd id, account name or e-mail is
included.

## Tie and exclusion policy

- `tie` / `ties` / `preference = 0`: the annotator (or the strict majority) found neither set better. A
  comparison's majority is the option with strictly most votes; options level at the top give "tie".
- Votes excluded by quality control are {
        "included and marked `excluded = true`" if filters.get("include_excluded") else "left out"
    }. Gold comparisons are {"included (`gold = true`)" if filters.get("include_gold", True) else "left out"}.
- Agreement figures count only non-gold comparisons and non-excluded votes.

## Figures

| figure | value |
|---|---|
| rows | {rows} |
{figure_lines}

Export filters: `{filter_text}`

## Fields

| field | type | description |
|---|---|---|
{field_lines}

## Loading

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_files="{HF_DATA_FILE}")["train"]
```

## License

Set by the platform admin (see the `license` field above).
"""
    return header + "\n" + body


# --------------------------------------------------------------------------------------------
# HP-FashionIQ layout
# --------------------------------------------------------------------------------------------

HPFIQ_KEY = re.compile(r"^(user_\d+)/(question_set_\d+)/(\d+)$")
HPFIQ_SET_SIZE = 25


def hpfiq_path(name: str, category: str) -> str:
    """``/-/image_data/<category>/<name>.jpg`` as in the released file ("-" = the FashionIQ root)."""
    return f"/-/image_data/{category or 'unknown'}/{name}.jpg"


def _score(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(int(round(float(value))))


def _natural(key: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key))


class HpfiqRows:
    """The released ``hpfiq.json`` structure: ``{"user_N": {"question_set_K": {parallel lists}}}``.

    Takes pair rows (``set1_images``…, ``preference``, ``likert1/2``, ``votes_json``) or vote rows
    (``set_a_images``…, ``choice``, ``rating_a/b``, ``annotator``), each with ``_category``: the folder
    all of the question's paths use, as in the release (``/-/image_data/<category>/<name>.jpg``).
    Rows whose ``source_key`` is an HP-FashionIQ key (``user_3/question_set_2/7``) keep that place, so an
    imported file comes back with the same grouping; other rows are grouped by annotator (pseudonyms or
    labels renamed ``user_1``, ``user_2``… in order of appearance) into question sets of 25. The layout has
    no tie: tied rows are skipped and counted in ``skipped_ties``.
    """

    def __init__(self, path: str | Path, columns: Columns) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.places: dict[tuple[str, str], dict[int, dict]] = {}
        self.users: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.skipped_ties = 0
        self.questions = 0

    def _place(self, row: dict, label: str) -> tuple[str, str, int]:
        match = HPFIQ_KEY.match(row.get("source_key") or "")
        if match:
            return match.group(1), match.group(2), int(match.group(3))
        user = self.users.setdefault(label, f"user_{len(self.users) + 1}")
        n = self.counts.get(user, 0)
        self.counts[user] = n + 1
        return user, f"question_set_{n // HPFIQ_SET_SIZE + 1}", n % HPFIQ_SET_SIZE

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            category = row["_category"]
            if "preference" in row:
                preferred, s1, s2 = row["preference"], row["set1_images"], row["set2_images"]
                score1, score2 = row["likert1"], row["likert2"]
                votes = json.loads(row["votes_json"] or "[]")
                label = str(votes[0].get("annotator", "")) if votes else ""
            else:
                preferred = {"a": 1, "b": 2}.get(row["choice"], 0)
                s1, s2 = row["set_a_images"], row["set_b_images"]
                score1, score2 = row["rating_a"], row["rating_b"]
                label = row["annotator"]
            if preferred not in (1, 2):
                self.skipped_ties += 1
                continue
            user, qset, index = self._place(row, label)
            target = row["target_image"]
            self.places.setdefault((user, qset), {})[index] = {
                "ref": hpfiq_path(row["reference_image"], category),
                "targ": hpfiq_path(target, category) if target else "",
                "sentence": row["text"],
                "set1": {"img_path": [hpfiq_path(n, category) for n in s1], "user_score": _score(score1)},
                "set2": {"img_path": [hpfiq_path(n, category) for n in s2], "user_score": _score(score2)},
                "preferred": str(preferred),
            }
            self.questions += 1

    def data(self) -> dict:
        out: dict[str, dict] = {}
        for user, qset in sorted(self.places, key=lambda k: (_natural(k[0]), _natural(k[1]))):
            entries = [self.places[(user, qset)][i] for i in sorted(self.places[(user, qset)])]
            out.setdefault(user, {})[qset] = {
                "ref_img_paths": [e["ref"] for e in entries],
                "targ_img_paths": [e["targ"] for e in entries],
                "sentences": [e["sentence"] for e in entries],
                "retrieved_set1": [e["set1"] for e in entries],
                "retrieved_set2": [e["set2"] for e in entries],
                "preferred set": [e["preferred"] for e in entries],
            }
        return out

    def close(self) -> None:
        with self.path.open("w", encoding="utf-8") as f:
            json.dump(self.data(), f, ensure_ascii=False)


WRITERS: dict[str, type] = {
    "parquet": ParquetRows,
    "jsonl": JsonlRows,
    "csv": CsvRows,
    "hf": HfFolderRows,
    "hpfiq": HpfiqRows,
}
