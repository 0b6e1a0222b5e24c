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


class HfFolderRows:
    """A folder ``datasets.load_dataset("parquet", data_files=...)`` (or ``load_dataset(folder)``) opens:
    ``data/train-00000-of-00001.parquet`` and, on :meth:`finish`, a README.md dataset card."""

    def __init__(self, folder: str | Path, columns: Columns) -> None:
        self.folder = Path(folder)
        self.columns = columns
        self.rows = 0
        self._parquet = ParquetRows(self.folder / HF_DATA_FILE, columns)

    def write(self, rows: list[dict]) -> None:
        self.rows += len(rows)
        self._parquet.write(rows)

    def close(self) -> None:
        self._parquet.close()

    def finish(self, *, title: str, level: str, figures: dict, filters: dict) -> None:
        (self.folder / "README.md").write_text(
            dataset_card(
                title=title, level=level, columns=self.columns, rows=self.rows, figures=figures, filters=filters
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


def dataset_card(*, title: str, level: str, columns: Columns, rows: int, figures: dict, filters: dict) -> str:
    """README.md with a YAML header (``license`` left empty for the admin, ``configs``, ``dataset_info``)."""
    features = []
    for name, kind, _doc in columns:
        if kind == "list[str]":
            features.append(f"  - name: {name}\n    sequence: string")
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
