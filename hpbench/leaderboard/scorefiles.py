"""Score files: models that run elsewhere enter the leaderboard through the scores their authors computed.

A researcher downloads a *request file*, scores it with their own code and uploads a *score file*:

- Preference benchmark (e.g. HP-FashionIQ). Request (JSON Lines, :func:`benchmark_request`): one question per
  line, ``{"question": "<benchmark label>/<position>", "reference": name, "text": ..., "images": [names]}``
  (the images of both sets, sorted; never the human verdict). Score file (``.jsonl`` or ``.parquet``): one row
  per (question, image), ``{"question": ..., "image": name, "score": relevance}``; every requested pair exactly
  once, finite numbers. A set's score is the mean relevance of its images, as for a model run.
- Retrieval split (FashionIQ, CIRR). Request (JSON, :func:`retrieval_request`): the queries (id, reference
  name, text as the official evaluation hands it to the model, gallery, CIRR subset members) and the gallery
  names. Score file (``.json``): the official CIRR test-server shape, ``{"version": "rc2", "metric": "recall",
  "<query id>": [50 names best first], ...}`` (reference left out on CIRR) and, for CIRR's Recall_subset,
  ``"metric": "recall_subset"`` with the 3 best subset members. Query ids are CIRR pair ids, FashionIQ query
  keys; the split is recognised from the ids.

Everything here reads the database and never writes; torch-free. The web process runs only
:func:`score_file_precheck` (name, size, a Parquet file's metadata: bounded reads of the file's ends); the full
validation (:func:`validate_score_file`) runs on a worker in a child process with a memory limit
(``worker/scorefile_check.py``). Reading is streaming and bounded before it starts: JSON lines of at most
:data:`MAX_LINE_BYTES`, at most :data:`MAX_BLANK_LINES` blank lines, Parquet files whose footer, row count and
uncompressed column sizes (from the metadata) are within bounds, read one row group at a time with the string
columns kept dictionary-encoded. Errors are :class:`ScoreFileError` naming the file and the first bad line, row
or query.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from hpbench.catalog.models import Dataset, Image, ModelEntry, Query
from hpbench.catalog.protocol import RANKING_DEPTH, SUBSET_DEPTH, query_public_id, retrieval_groups
from hpbench.catalog.query_text import query_text
from hpbench.leaderboard.models import PreferenceBenchmark
from hpbench.leaderboard.services.submissions import SubmissionError

SCORES_FAMILY = ModelEntry.Family.SCORES.value
RELEVANCE_SUFFIXES = (".jsonl", ".parquet")
RANKING_SUFFIXES = (".json",)
RELEVANCE_COLUMNS = ("question", "image", "score")
RANKING_METRICS = {"recall": RANKING_DEPTH, "recall_subset": SUBSET_DEPTH}
#: Parquet rows read per batch while validating.
_BATCH_ROWS = 65536
#: The longest JSON line of a relevance file (a real row is under 200 bytes).
MAX_LINE_BYTES = 64 * 1024
#: Blank lines tolerated in a JSON Lines file (each costs a loop turn, and a file may hold millions).
MAX_BLANK_LINES = 1000
#: The longest question id or image name (a Parquet dictionary value or string cell).
MAX_NAME_CHARS = 1024
#: The largest Parquet footer (metadata) read.
MAX_PARQUET_FOOTER_BYTES = 1024 * 1024
#: A Parquet file's columns may unpack to at most this many times the score-file limit.
PARQUET_UNPACK_FACTOR = 8


class ScoreFileError(SubmissionError):
    """A score file is refused; the message names the file and the first bad line, row or query."""


def max_score_file_bytes() -> int:
    return int(getattr(settings, "HPBENCH_MAX_SCORE_FILE_BYTES", 64 * 1024**2))


# ----------------------------------------------------------------------------------------------------------
# Request files
# ----------------------------------------------------------------------------------------------------------


def question_id(benchmark: PreferenceBenchmark, position: int) -> str:
    return f"{benchmark.label}/{position}"


def _names(ids: set[int]) -> dict[int, str]:
    return dict(Image.objects.filter(pk__in=list(ids)).values_list("id", "name"))


@dataclass(frozen=True)
class Question:
    position: int
    reference: str
    text: str
    set1: tuple[str, ...]
    set2: tuple[str, ...]

    @property
    def images(self) -> list[str]:
        return sorted(set(self.set1) | set(self.set2))


def benchmark_questions(benchmark: PreferenceBenchmark) -> list[Question]:
    """The benchmark's pairs in position order, with image names in place of ids."""
    rows = list(benchmark.pairs.order_by("position").values_list(
        "position", "reference_id", "text", "set1_image_ids", "set2_image_ids"
    ))
    names = _names({i for _, ref, _, s1, s2 in rows for i in (ref, *s1, *s2)})
    return [
        Question(position=pos, reference=names[ref], text=text, set1=tuple(names[i] for i in s1),
                 set2=tuple(names[i] for i in s2))
        for pos, ref, text, s1, s2 in rows
    ]


def benchmark_request(benchmark: PreferenceBenchmark) -> Iterator[str]:
    """The request file of a preference benchmark, as JSON Lines (one question per line)."""
    for q in benchmark_questions(benchmark):
        yield json.dumps({"question": question_id(benchmark, q.position), "reference": q.reference, "text": q.text,
                          "images": q.images}) + "\n"


@dataclass
class SplitProtocol:
    """What a ranking file of one dataset split is checked and scored against (names, not ids)."""

    dataset: Dataset
    split: str
    protocol: str
    galleries: dict[str, list[str]]
    queries: dict[str, Query]  # public id -> query
    group: dict[str, str]  # public id -> gallery group
    reference: dict[str, str]
    target: dict[str, str | None]
    subset: dict[str, list[str]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)

    def depth(self, metric: str, query_id: str) -> int:
        """How many names a ranking of ``query_id`` lists: 50 (3 for subsets), fewer when the gallery is
        smaller (tiny datasets), as the official code ranks every gallery image there is."""
        if metric == "recall_subset":
            return min(SUBSET_DEPTH, len(self.allowed_subset(query_id)))
        size = len(self.galleries[self.group[query_id]])
        if self.protocol == "cirr" and self.reference[query_id] in self.gallery_set(query_id):
            size -= 1
        return min(RANKING_DEPTH, size)

    def gallery_set(self, query_id: str) -> set[str]:
        group = self.group[query_id]
        cache = self.__dict__.setdefault("_sets", {})
        if group not in cache:
            cache[group] = set(self.galleries[group])
        return cache[group]

    def allowed_subset(self, query_id: str) -> list[str]:
        ref = self.reference[query_id]
        gallery = self.gallery_set(query_id)
        return [n for n in self.subset.get(query_id, []) if n != ref and n in gallery]


def split_protocol(*, dataset: Dataset, split: str) -> SplitProtocol:
    """The galleries and queries of a split, by name. Raises ``ValueError`` when the split has no queries."""
    groups = retrieval_groups(dataset=dataset, split=split)
    ids = {i for gallery, members in groups.values() for i in gallery}
    ids |= {q.reference_id for _, members in groups.values() for q in members}
    ids |= {q.target_id for _, members in groups.values() for q in members if q.target_id}
    names = _names(ids)
    out = SplitProtocol(dataset=dataset, split=split, protocol=dataset.protocol,
                        galleries={g: [names[i] for i in gallery] for g, (gallery, _) in groups.items()},
                        queries={}, group={}, reference={}, target={}, names=names)
    for group, (_, members) in groups.items():
        for query in members:
            key = query_public_id(query, dataset)
            out.queries[key] = query
            out.group[key] = group
            out.reference[key] = names[query.reference_id]
            out.target[key] = names.get(query.target_id) if query.target_id else None
            if dataset.protocol == "cirr":
                out.subset[key] = list(query.subset_members or [])
    return out


def retrieval_request(*, dataset: Dataset, split: str) -> dict[str, Any]:
    """The request file of a dataset split (a JSON object; no targets)."""
    proto = split_protocol(dataset=dataset, split=split)
    queries = []
    for key, query in proto.queries.items():
        text = query_text(protocol=dataset.protocol, captions=query.captions)
        row: dict[str, Any] = {"id": key, "reference": proto.reference[key], "text": text, "gallery": proto.group[key]}
        if proto.protocol == "cirr":
            row["subset"] = proto.allowed_subset(key)
        queries.append(row)
    return {
        "dataset": dataset.name,
        "split": split,
        "protocol": proto.protocol,
        "depth": RANKING_DEPTH,
        "subset_depth": SUBSET_DEPTH if proto.protocol == "cirr" else None,
        "reference_removed": proto.protocol == "cirr",
        "galleries": proto.galleries,
        "queries": queries,
    }


# ----------------------------------------------------------------------------------------------------------
# Reading an uploaded file
# ----------------------------------------------------------------------------------------------------------


def check_file_basics(*, name: str, size: int | None) -> str:
    """The file's suffix after checking it is a known format of a size within the limit."""
    suffix = Path(name or "").suffix.lower()
    if suffix not in RELEVANCE_SUFFIXES + RANKING_SUFFIXES:
        raise ScoreFileError(f"file {name!r}: expected .jsonl or .parquet (relevance) or .json (rankings)")
    limit = max_score_file_bytes()
    if size is None or size > limit:
        raise ScoreFileError(f"file {name!r}: {size} bytes is over the score-file limit of {limit} bytes")
    if size == 0:
        raise ScoreFileError(f"file {name!r}: empty")
    return suffix


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_loads(text: str | bytes) -> Any:
    """``json.loads`` whose every refusal is a ``ValueError`` (numbers of over 4,300 digits included)."""
    return json.loads(text)


def _jsonl_rows(handle: IO[bytes], name: str) -> Iterator[tuple[str, Any]]:
    blank = 0
    n = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        n += 1
        where = f"file {name!r}, line {n}"
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise ScoreFileError(f"{where}: longer than {MAX_LINE_BYTES} bytes (a row is one short JSON object)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScoreFileError(f"{where}: not UTF-8 text ({exc.reason})") from None
        if not text.strip():
            blank += 1
            if blank > MAX_BLANK_LINES:
                raise ScoreFileError(f"{where}: over {MAX_BLANK_LINES} blank lines")
            continue
        try:
            row = _json_loads(text)
        except RecursionError:
            raise ScoreFileError(f"{where}: not valid JSON (nested too deeply)") from None
        except ValueError as exc:  # JSONDecodeError, and integers past Python's 4,300-digit limit
            raise ScoreFileError(f"{where}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
        yield where, row


def _string_type(kind) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def parquet_check_metadata(parquet, *, name: str) -> None:
    """Refuse (:class:`ScoreFileError`) a Parquet file whose schema is not the relevance file's or whose metadata
    says it unpacks past :data:`PARQUET_UNPACK_FACTOR` times the score-file limit (the sum of every column
    chunk's uncompressed size, dictionary pages included), or has more rows than the limit allows (8 bytes a
    row at least). Reads the metadata only."""
    import pyarrow as pa

    schema = parquet.schema_arrow
    missing = [c for c in RELEVANCE_COLUMNS if c not in schema.names]
    if missing:
        raise ScoreFileError(f"file {name!r}: missing column(s) {', '.join(missing)}; expected "
                             f"{', '.join(RELEVANCE_COLUMNS)}, got {', '.join(schema.names)}")
    for column, test, expected in (("question", _string_type, "string"), ("image", _string_type, "string"),
                                   ("score", lambda t: pa.types.is_floating(t) or pa.types.is_integer(t), "number")):
        kind = schema.field(column).type
        if not test(kind):
            raise ScoreFileError(f"file {name!r}: column {column!r} is {kind}, expected {expected}")
    meta = parquet.metadata
    limit = max_score_file_bytes()
    if meta.num_rows > limit // 8:
        raise ScoreFileError(f"file {name!r}: {meta.num_rows} rows, over the {limit // 8} a file of the "
                             f"score-file limit ({limit} bytes) may hold")
    unpacked = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        unpacked += sum(max(group.column(c).total_uncompressed_size, 0) for c in range(group.num_columns))
    if unpacked > PARQUET_UNPACK_FACTOR * limit:  # a compression bomb, refused before a page is read
        raise ScoreFileError(f"file {name!r}: unpacks to {unpacked} bytes, over {PARQUET_UNPACK_FACTOR} times the "
                             "score-file limit")


def parquet_open(handle: IO[bytes], *, name: str, size: int):
    """The file as a ``pyarrow.parquet.ParquetFile`` after bounded checks of its ends (magic bytes, footer length
    at most :data:`MAX_PARQUET_FOOTER_BYTES`) and :func:`parquet_check_metadata`; string columns are read
    dictionary-encoded. Raises :class:`ScoreFileError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    not_parquet = f"file {name!r}: not a Parquet file"
    handle.seek(0)
    head = handle.read(4)
    if size < 12 or head != b"PAR1":
        raise ScoreFileError(f"{not_parquet} (no PAR1 magic bytes)")
    handle.seek(size - 8)
    tail = handle.read(8)
    footer = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or footer <= 0 or footer > size - 12:
        raise ScoreFileError(f"{not_parquet} (bad footer)")
    if footer > MAX_PARQUET_FOOTER_BYTES:
        raise ScoreFileError(f"file {name!r}: Parquet metadata of {footer} bytes is over the limit of "
                             f"{MAX_PARQUET_FOOTER_BYTES} bytes")
    handle.seek(0)
    try:
        parquet = pq.ParquetFile(handle, read_dictionary=["question", "image"])
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ScoreFileError(f"{not_parquet} ({exc})") from None
    parquet_check_metadata(parquet, name=name)
    return parquet


def _names_column(column, name: str, label: str, first_row: int) -> Any:
    """A string column of a batch as a list of Python strings, each dictionary value converted once; values
    longer than :data:`MAX_NAME_CHARS` refused."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        values = column.dictionary
        lengths = pc.utf8_length(values)
        longest = pc.max(lengths).as_py() if len(values) else 0
        if longest and longest > MAX_NAME_CHARS:
            raise ScoreFileError(f"file {name!r}, row group from row {first_row}: a {label} longer than "
                                 f"{MAX_NAME_CHARS} characters")
        names = values.to_pylist()
        return [None if i is None else names[i] for i in column.indices.to_pylist()]
    lengths = pc.utf8_length(column)
    longest = pc.max(lengths).as_py() if len(column) else 0
    if longest and longest > MAX_NAME_CHARS:
        raise ScoreFileError(f"file {name!r}, row group from row {first_row}: a {label} longer than "
                             f"{MAX_NAME_CHARS} characters")
    return column.to_pylist()


def _parquet_rows(handle: IO[bytes], name: str) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa

    handle.seek(0, 2)
    size = handle.tell()
    parquet = parquet_open(handle, name=name, size=size)
    n = 0
    try:
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=list(RELEVANCE_COLUMNS)):
            questions = _names_column(batch.column(0), name, "question", n + 1)
            images = _names_column(batch.column(1), name, "image", n + 1)
            for question, image, score in zip(questions, images, batch.column(2).to_pylist(), strict=True):
                n += 1
                yield f"file {name!r}, row {n}", {"question": question, "image": image, "score": score}
    except pa.ArrowException as exc:
        raise ScoreFileError(f"file {name!r}: unreadable after row {n} ({exc})") from None


def _benchmark_from_question(value: str, where: str) -> tuple[PreferenceBenchmark, int]:
    match = re.fullmatch(r"(.+)-v(\d+)/(\d+)", value)
    if not match:
        raise ScoreFileError(f"{where}: question {value!r} is not an id of a request file ('<benchmark>-v<N>/<n>')")
    try:
        benchmark = PreferenceBenchmark.objects.select_related("dataset").get(name=match[1], version=int(match[2]))
    except PreferenceBenchmark.DoesNotExist:
        raise ScoreFileError(f"{where}: question {value!r} names no benchmark here ({match[1]} v{match[2]})") from None
    return benchmark, int(match[3])


@dataclass
class RelevanceScores:
    """A validated relevance file: its benchmark and every (position, image name) -> relevance."""

    benchmark: PreferenceBenchmark
    questions: list[Question]
    relevance: dict[tuple[int, str], float]

    def set_relevances(self) -> tuple[list[list[float]], list[list[float]]]:
        """Per pair (benchmark order), the relevances of set 1's and set 2's images."""
        set1 = [[self.relevance[(q.position, n)] for n in q.set1] for q in self.questions]
        set2 = [[self.relevance[(q.position, n)] for n in q.set2] for q in self.questions]
        return set1, set2


def read_relevance(handle: IO[bytes], *, name: str, suffix: str) -> RelevanceScores:
    """Parse and validate a relevance file against the benchmark its question ids name.

    Raises :class:`ScoreFileError` for a wrong schema, an unknown question or image, a duplicate, a number that
    is not finite, or a requested (question, image) that has no row.
    """
    benchmark: PreferenceBenchmark | None = None
    questions: dict[int, Question] = {}
    wanted: dict[int, set[str]] = {}
    seen: dict[tuple[int, str], str] = {}
    relevance: dict[tuple[int, str], float] = {}
    rows = _parquet_rows(handle, name) if suffix == ".parquet" else _jsonl_rows(handle, name)
    for where, row in rows:
        if not isinstance(row, dict):
            raise ScoreFileError(f"{where}: expected an object with {', '.join(RELEVANCE_COLUMNS)}, got {row!r:.80}")
        missing = [c for c in RELEVANCE_COLUMNS if c not in row]
        if missing:
            raise ScoreFileError(f"{where}: missing field(s) {', '.join(missing)}")
        extra = sorted(set(row) - set(RELEVANCE_COLUMNS))
        if extra:
            raise ScoreFileError(f"{where}: unknown field(s) {', '.join(map(repr, extra))}")
        q, image, score = row["question"], row["image"], row["score"]
        if not isinstance(q, str) or not isinstance(image, str):
            raise ScoreFileError(f"{where}: 'question' and 'image' must be strings")
        if not _is_number(score) or not math.isfinite(score):
            raise ScoreFileError(f"{where}: score {score!r} for question {q!r} image {image!r} is not a finite number")
        if benchmark is None:
            benchmark, _ = _benchmark_from_question(q, where)
            questions = {x.position: x for x in benchmark_questions(benchmark)}
            wanted = {pos: set(x.images) for pos, x in questions.items()}
        prefix, _, pos_text = q.rpartition("/")
        if prefix != benchmark.label:
            raise ScoreFileError(f"{where}: question {q!r} is not of {benchmark.label}, the benchmark of the first row")
        position = int(pos_text) if pos_text.isdigit() else -1
        if position not in questions:
            raise ScoreFileError(f"{where}: question {q!r} is not in {benchmark.label}")
        if image not in wanted[position]:
            raise ScoreFileError(f"{where}: image {image!r} is not a candidate of question {q!r}")
        key = (position, image)
        if key in seen:
            raise ScoreFileError(f"{where}: question {q!r} image {image!r} appears twice (first at {seen[key]})")
        seen[key] = where.rsplit(", ", 1)[-1]
        relevance[key] = float(score)
    if benchmark is None:
        raise ScoreFileError(f"file {name!r}: no rows")
    absent = [(pos, img) for pos in sorted(wanted) for img in sorted(wanted[pos]) if (pos, img) not in relevance]
    if absent:
        pos, img = absent[0]
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        missing_q = question_id(benchmark, pos)
        raise ScoreFileError(f"file {name!r}: no score for question {missing_q!r} image {img!r}{more}")
    return RelevanceScores(benchmark=benchmark, questions=[questions[p] for p in sorted(questions)],
                           relevance=relevance)


@dataclass
class Rankings:
    """A validated ranking file: its split, metric and ``{query id: [names best first]}``."""

    protocol: SplitProtocol
    metric: str
    rankings: dict[str, list[str]]


def _split_candidates() -> list[tuple[Dataset, str]]:
    pairs = Query.objects.values_list("dataset_id", "split").distinct().order_by("dataset_id", "split")
    datasets = Dataset.objects.in_bulk([d for d, _ in pairs])
    return [(datasets[d], s) for d, s in pairs]


def _public_ids(dataset: Dataset, split: str) -> set[str]:
    if dataset.protocol == "cirr":
        ids = Query.objects.filter(dataset=dataset, split=split).values_list("pairid", "key")
        return {str(int(p)) if p is not None else k for p, k in ids}
    return set(Query.objects.filter(dataset=dataset, split=split).values_list("key", flat=True))


def read_rankings(handle: IO[bytes], *, name: str) -> Rankings:
    """Parse and validate a ranking file; its split is the one whose query ids are exactly the file's keys.

    Raises :class:`ScoreFileError` naming the first bad query: an unknown or missing id, a list of the wrong
    length, a repeated name, a name outside the query's gallery (or subset), or CIRR's reference image.
    """
    try:
        data = _json_loads(handle.read())
    except RecursionError:
        raise ScoreFileError(f"file {name!r}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers past the 4,300-digit limit
        raise ScoreFileError(f"file {name!r}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(data, dict):
        raise ScoreFileError(f"file {name!r}: expected an object {{\"version\", \"metric\", \"<query id>\": [names]}}")
    metric = data.get("metric")
    if metric not in RANKING_METRICS:
        raise ScoreFileError(f"file {name!r}: 'metric' must be 'recall' or 'recall_subset', got {metric!r}")
    if not isinstance(data.get("version"), str):
        raise ScoreFileError(f"file {name!r}: 'version' must be a string (CIRR's is \"rc2\")")
    keys = [k for k in data if k not in ("version", "metric")]
    if not keys:
        raise ScoreFileError(f"file {name!r}: no queries")
    key_set = set(keys)
    best: tuple[int, Dataset, str, set[str]] | None = None
    exact = []
    for dataset, split in _split_candidates():
        ids = _public_ids(dataset, split)
        if ids == key_set:
            exact.append((dataset, split))
        overlap = len(ids & key_set)
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, dataset, split, ids)
    if len(exact) > 1:
        listed = ", ".join(f"{d.name}/{s}" for d, s in exact)
        raise ScoreFileError(f"file {name!r}: its query ids match several dataset splits ({listed})")
    if not exact:
        if best is None:
            raise ScoreFileError(f"file {name!r}: query {keys[0]!r} is not a query of any dataset split here")
        _, dataset, split, ids = best
        unknown = [k for k in keys if k not in ids]
        if unknown:
            raise ScoreFileError(f"file {name!r}: query {unknown[0]!r} is not a query of {dataset.name}/{split}")
        absent = sorted(ids - key_set)
        raise ScoreFileError(f"file {name!r}: query {absent[0]!r} of {dataset.name}/{split} has no ranking"
                             + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""))
    dataset, split = exact[0]
    proto = split_protocol(dataset=dataset, split=split)
    if metric == "recall_subset" and proto.protocol != "cirr":
        raise ScoreFileError(f"file {name!r}: 'recall_subset' is CIRR's metric; {dataset.name} has no subsets")
    out: dict[str, list[str]] = {}
    for key in keys:
        where = f"file {name!r}, query {key!r}"
        ranking = data[key]
        depth = proto.depth(metric, key)
        if not isinstance(ranking, list) or any(not isinstance(n, str) for n in ranking):
            raise ScoreFileError(f"{where}: expected a list of image names")
        if len(ranking) != depth:
            raise ScoreFileError(f"{where}: {len(ranking)} names, expected {depth}")
        if len(set(ranking)) != len(ranking):
            raise ScoreFileError(f"{where}: repeats an image name")
        allowed = set(proto.allowed_subset(key)) if metric == "recall_subset" else proto.gallery_set(key)
        for n in ranking:
            if proto.protocol == "cirr" and n == proto.reference[key]:
                raise ScoreFileError(f"{where}: lists its reference image {n!r}, which CIRR removes from the ranking")
            if n not in allowed:
                what = "subset members" if metric == "recall_subset" else f"gallery {proto.group[key]!r}"
                raise ScoreFileError(f"{where}: image {n!r} is not among the query's {what}")
        out[key] = ranking
    return Rankings(protocol=proto, metric=metric, rankings=out)


# ----------------------------------------------------------------------------------------------------------
# One entry point for both kinds
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ValidatedFile:
    name: str
    kind: str
    rows: int
    sha256: str
    relevance: RelevanceScores | None = None
    rankings: Rankings | None = None

    @property
    def target(self) -> tuple:
        if self.relevance is not None:
            return ("benchmark", self.relevance.benchmark.pk)
        assert self.rankings is not None
        return ("split", self.rankings.protocol.dataset.pk, self.rankings.protocol.split, self.rankings.metric)

    @property
    def target_label(self) -> str:
        if self.relevance is not None:
            return self.relevance.benchmark.label
        assert self.rankings is not None
        return f"{self.rankings.protocol.dataset.name}/{self.rankings.protocol.split} ({self.rankings.metric})"


def file_sha256(handle: IO[bytes]) -> str:
    """The SHA-256 of the file's bytes, read in blocks; leaves it at position 0."""
    digest = hashlib.sha256()
    handle.seek(0)
    while block := handle.read(1 << 20):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def score_file_precheck(handle: IO[bytes], *, name: str, size: int | None) -> str:
    """The checks the web process makes while the upload waits, each reading a bounded amount: name, size,
    and for Parquet the magic bytes, the footer's length and the metadata (:func:`parquet_open`). Returns the
    suffix; leaves the file at position 0. Raises :class:`ScoreFileError`. Rows are read by
    :func:`validate_score_file`, on a worker."""
    suffix = check_file_basics(name=name, size=size)
    try:
        if suffix == ".parquet":
            assert size is not None  # check_file_basics refused a file without one
            parquet_open(handle, name=name, size=size)
    finally:
        handle.seek(0)
    return suffix


def score_file_kind(suffix: str) -> str:
    """``relevance`` or ``ranking``, by the file's suffix."""
    return "relevance" if suffix in RELEVANCE_SUFFIXES else "ranking"


def validate_score_file(handle: IO[bytes], *, name: str, size: int | None) -> ValidatedFile:
    """Check and parse a score file of either kind (see the module docstring). Raises :class:`ScoreFileError`."""
    suffix = check_file_basics(name=name, size=size)
    sha = file_sha256(handle)
    try:
        if suffix in RELEVANCE_SUFFIXES:
            relevance = read_relevance(handle, name=name, suffix=suffix)
            return ValidatedFile(name=name, kind="relevance", rows=len(relevance.relevance), sha256=sha,
                                 relevance=relevance)
        rankings = read_rankings(handle, name=name)
        return ValidatedFile(name=name, kind="ranking", rows=len(rankings.rankings), sha256=sha, rankings=rankings)
    except UnicodeDecodeError as exc:
        raise ScoreFileError(f"file {name!r}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    finally:
        handle.seek(0)


# ----------------------------------------------------------------------------------------------------------
# Scoring (the same metric functions as a model run)
# ----------------------------------------------------------------------------------------------------------


def relevance_set_scores(scores: RelevanceScores) -> tuple[Any, Any]:
    """Per-pair set scores ``(set1, set2)`` in benchmark order: each set's mean relevance (QuRe Eq. 8), by
    ``hpbench.metrics.preference.set_scores`` as for a model run; hand them to ``model_score_store``."""
    from hpbench.metrics import preference

    set1, set2 = scores.set_relevances()
    return preference.set_scores(set1), preference.set_scores(set2)


def rankings_recall(proto: SplitProtocol, files: dict[str, Rankings]) -> dict[str, Any]:
    """Recall@K of submitted rankings (``files`` by metric: ``recall`` and/or CIRR's ``recall_subset``), by the
    functions of ``hpbench.metrics.retrieval`` a model run uses: FashionIQ per category and averaged, CIRR
    R@1/5/10/50 and Rsubset@1/2/3 (``avg`` when both files are there). Queries whose target is not in their
    gallery are left out, as in a model run, and counted: ``skipped_queries`` and ``skipped_by_group``."""
    from hpbench.metrics import retrieval as metrics

    out: dict[str, Any] = {"protocol": proto.protocol, "split": proto.split, "queries": len(proto.queries),
                           "source": "score file"}
    scored = [k for k in proto.queries if proto.target[k] is not None and proto.target[k] in proto.gallery_set(k)]
    # Counted and reported as a model run reports them (worker.retrieval), never dropped silently.
    skipped: dict[str, int] = {}
    for k in proto.queries:
        if proto.target[k] is not None and proto.target[k] not in proto.gallery_set(k):
            skipped[proto.group[k]] = skipped.get(proto.group[k], 0) + 1
    out["skipped_queries"] = sum(skipped.values())
    if skipped:
        out["skipped_by_group"] = skipped
    if not scored:
        return out
    targets = [proto.target[k] for k in scored]
    recall, subset = files.get("recall"), files.get("recall_subset")
    if proto.protocol != "cirr":
        if recall is not None:
            per_group: dict[str, list[str]] = {}
            for k in scored:
                per_group.setdefault(proto.group[k], []).append(k)
            out.update(metrics.fashioniq_recall({
                group: metrics.target_ranks_from_rankings([recall.rankings[k] for k in keys],
                                                          [proto.target[k] for k in keys], depth=RANKING_DEPTH)
                for group, keys in sorted(per_group.items())
            }))
        return out
    ranks = subset_ranks = None
    if recall is not None:
        ranks = metrics.target_ranks_from_rankings([recall.rankings[k] for k in scored], targets, depth=RANKING_DEPTH)
    if subset is not None:
        subset_ranks = metrics.target_ranks_from_rankings([subset.rankings[k] for k in scored], targets,
                                                          depth=SUBSET_DEPTH)
    if ranks is not None and subset_ranks is not None:
        out.update(metrics.cirr_recall_from_ranks(ranks, subset_ranks))
    elif ranks is not None:
        out.update({f"R@{k}": v for k, v in metrics.recall_at_k(ranks, metrics.CIRR_KS).items()})
    elif subset_ranks is not None:
        out.update({f"Rsubset@{k}": v for k, v in metrics.recall_at_k(subset_ranks, metrics.CIRR_SUBSET_KS).items()})
    return out
