"""Reads for exports: validated filters, and the rows of the preference dataset, streamed in chunks.

Rows come from ``values_list(...).iterator(chunk_size=...)`` (a server-side cursor on PostgreSQL), ordered by
primary key. Names (campaigns, models, images) are resolved through small per-export dictionaries filled
one batch at a time, so a chunk costs a constant number of queries whatever its size (no N+1).

Three levels:

* ``votes``: one row per vote (:data:`VOTE_COLUMNS`);
* ``comparisons``: one row per comparison with at least one counted vote, with aggregates
  (:data:`COMPARISON_COLUMNS`);
* ``pairs``: one row per pair of a frozen benchmark version (:data:`PAIR_COLUMNS`).

Annotators appear only as their public pseudonym (``Annotator.pseudonym``); crowd ids, account names and
e-mail addresses are never read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from annotate.models import Annotator, Campaign, Comparison, Vote, counted_votes_q
from annotate.quality import pairwise_agreement
from hpbench.catalog.models import Image, ModelEntry
from hpbench.leaderboard.models import BenchmarkPair, PreferenceBenchmark
from hpbench.metrics.reliability import majority

LEVELS = ("votes", "comparisons")
DEFAULT_CHUNK = 10_000
_CACHE_LIMIT = 50_000  # entries per lookup cache before it is emptied (keeps memory flat)


class ExportError(ValueError):
    """Bad export parameters; the message names the parameter and the value."""


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportParams:
    """What to export. ``benchmark`` is ``(name, version)`` (version None = the active one) and excludes the
    vote filters; dates are inclusive calendar days in the project's time zone."""

    campaigns: tuple[str, ...] = ()
    benchmark: tuple[str, int | None] | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    include_excluded: bool = False
    include_gold: bool = True
    level: str = "votes"
    # Resolved by :func:`params_parse` (not part of the request).
    campaign_ids: tuple[int, ...] = field(default=(), compare=False)
    benchmark_id: int | None = field(default=None, compare=False)

    @property
    def effective_level(self) -> str:
        return "pairs" if self.benchmark_id is not None else self.level

    def as_json(self) -> dict:
        """Plain JSON (for ``ExportJob.params``); :func:`params_parse` reads it back."""
        data = asdict(self)
        data.pop("campaign_ids")
        data.pop("benchmark_id")
        data["campaigns"] = list(self.campaigns)
        data["benchmark"] = (
            None
            if self.benchmark is None
            else f"{self.benchmark[0]}" + (f":{self.benchmark[1]}" if self.benchmark[1] is not None else "")
        )
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        return data


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ExportError(f"{name}: {value!r} is not a date (use YYYY-MM-DD)") from None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ExportError(f"{name}: {value!r} is not true or false")


def benchmark_spec(value: str) -> tuple[str, int | None]:
    """``"name"`` or ``"name:3"`` -> ``(name, version)``; raises ExportError for a bad version."""
    name, _, version = str(value).strip().partition(":")
    if not name:
        raise ExportError("benchmark: give a name, or NAME:VERSION")
    if not version:
        return name, None
    if not version.isdigit():
        raise ExportError(f"benchmark: version {version!r} in {value!r} is not a whole number")
    return name, int(version)


def params_parse(
    *,
    campaigns: Iterable[str] = (),
    benchmark: str | None = None,
    since: Any = None,
    until: Any = None,
    include_excluded: Any = False,
    include_gold: Any = True,
    level: str = "votes",
) -> ExportParams:
    """Validate export filters against the database. Raises :class:`ExportError` for an unknown campaign or
    benchmark, a bad date or level, or filters that do not go together."""
    slugs = tuple(dict.fromkeys(s.strip() for s in (campaigns or ()) if s and s.strip()))
    level = (level or "votes").strip()
    if level not in LEVELS:
        raise ExportError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    since_d, until_d = _date(since, "since"), _date(until, "until")
    if since_d and until_d and since_d > until_d:
        raise ExportError(f"since {since_d} is after until {until_d}")
    campaign_ids: tuple[int, ...] = ()
    if slugs:
        found = dict(Campaign.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        unknown = [s for s in slugs if s not in found]
        if unknown:
            raise ExportError(f"campaign: no campaign {', '.join(map(repr, unknown))}")
        campaign_ids = tuple(found[s] for s in slugs)
    spec = None
    benchmark_id = None
    if benchmark not in (None, ""):
        if slugs or since_d or until_d:
            raise ExportError("benchmark: a frozen benchmark is exported whole; leave out campaign and dates")
        spec = benchmark_spec(benchmark)
        qs = PreferenceBenchmark.objects.filter(name=spec[0])
        found_bm = qs.filter(version=spec[1]) if spec[1] is not None else qs.order_by("-is_active", "-version")
        benchmark_id = found_bm.values_list("pk", flat=True).first()
        if benchmark_id is None:
            raise ExportError(f"benchmark: no benchmark {benchmark!r}")
    return ExportParams(
        campaigns=slugs,
        benchmark=spec,
        since=since_d,
        until=until_d,
        include_excluded=_bool(include_excluded, "include_excluded"),
        include_gold=_bool(include_gold, "include_gold"),
        level=level,
        campaign_ids=campaign_ids,
        benchmark_id=benchmark_id,
    )


def params_from_json(data: dict) -> ExportParams:
    """Re-validate parameters stored by :meth:`ExportParams.as_json`."""
    return params_parse(
        campaigns=data.get("campaigns") or (),
        benchmark=data.get("benchmark"),
        since=data.get("since"),
        until=data.get("until"),
        include_excluded=data.get("include_excluded", False),
        include_gold=data.get("include_gold", True),
        level=data.get("level", "votes"),
    )


# --------------------------------------------------------------------------------------------
# Columns (the writers build their schemas from these)
# --------------------------------------------------------------------------------------------

# (name, type, description); types: str, int, float, bool, datetime, list[str]
VOTE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("vote_id", "int", "Vote id (stable within this platform)."),
    ("campaign", "str", "Campaign slug."),
    ("comparison_id", "int", "Comparison id; votes with the same id judged the same two sets."),
    ("dataset", "str", "Dataset the query and images come from."),
    ("reference_image", "str", "Reference image name."),
    ("captions", "list[str]", "The query's modification captions."),
    ("text", "str", "The query text shown to the annotator."),
    ("target_image", "str", "Ground-truth target image name (may be null)."),
    ("set_a_images", "list[str]", "Set A: image names in the order retrieved."),
    ("set_b_images", "list[str]", "Set B: image names in the order retrieved."),
    ("set_a_model", "str", "Model that retrieved set A (null for gold sets)."),
    ("set_b_model", "str", "Model that retrieved set B (null for gold sets)."),
    ("annotator", "str", "Stable public pseudonym of the annotator (never a crowd id or account)."),
    ("choice", "str", "'a', 'b' or 'tie'."),
    ("tie", "bool", "True when the annotator answered 'tie'."),
    ("rating_a", "int", "Likert rating 1-5 of set A (null when not asked)."),
    ("rating_b", "int", "Likert rating 1-5 of set B (null when not asked)."),
    ("irrelevant", "bool", "The annotator flagged both sets as irrelevant."),
    ("gold", "bool", "A gold (control) comparison with a known answer."),
    ("excluded", "bool", "Excluded by quality control (vote excluded or annotator flagged)."),
    ("time_ms", "int", "Time on task in milliseconds."),
    ("created_at", "datetime", "When the vote was recorded (UTC)."),
)

COMPARISON_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("comparison_id", "int", "Comparison id."),
    ("campaign", "str", "Campaign slug."),
    ("dataset", "str", "Dataset the query and images come from."),
    ("reference_image", "str", "Reference image name."),
    ("captions", "list[str]", "The query's modification captions."),
    ("text", "str", "The query text shown to annotators."),
    ("target_image", "str", "Ground-truth target image name (may be null)."),
    ("set_a_images", "list[str]", "Set A: image names in order."),
    ("set_b_images", "list[str]", "Set B: image names in order."),
    ("set_a_model", "str", "Model that retrieved set A."),
    ("set_b_model", "str", "Model that retrieved set B."),
    ("gold", "bool", "A gold (control) comparison."),
    ("votes", "int", "Votes counted (after the export's filters)."),
    ("votes_a", "int", "Votes for set A."),
    ("votes_b", "int", "Votes for set B."),
    ("ties", "int", "Tie votes."),
    ("irrelevant", "int", "Votes flagging both sets irrelevant."),
    ("mean_rating_a", "float", "Mean Likert rating of set A (null when none)."),
    ("mean_rating_b", "float", "Mean Likert rating of set B (null when none)."),
    ("majority", "str", "Strict majority of a / b / tie; level at the top = 'tie'."),
    ("agreement", "float", "Share of agreeing vote pairs (null with fewer than 2 votes)."),
)

PAIR_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("benchmark", "str", "Benchmark name."),
    ("version", "int", "Benchmark version (frozen)."),
    ("position", "int", "Position of the pair in the benchmark."),
    ("source_key", "str", "Where the pair came from (file question key or comparison)."),
    ("dataset", "str", "Dataset the images come from."),
    ("reference_image", "str", "Reference image name."),
    ("captions", "list[str]", "The linked query's captions (empty when no query is linked)."),
    ("text", "str", "The query text judged."),
    ("target_image", "str", "Target image name of the linked query (may be null)."),
    ("set1_images", "list[str]", "Set 1: image names in order."),
    ("set2_images", "list[str]", "Set 2: image names in order."),
    ("set1_model", "str", "Model that retrieved set 1 (null when unknown)."),
    ("set2_model", "str", "Model that retrieved set 2 (null when unknown)."),
    ("preference", "int", "Human verdict: 1 = set 1, 2 = set 2, 0 = tie."),
    ("likert1", "float", "Likert score of set 1 (mean over votes)."),
    ("likert2", "float", "Likert score of set 2 (mean over votes)."),
    ("votes", "int", "Number of votes behind the verdict."),
    ("votes_json", "str", "The votes as JSON: annotator pseudonym or released label, choice, ratings."),
)

COLUMNS = {"votes": VOTE_COLUMNS, "comparisons": COMPARISON_COLUMNS, "pairs": PAIR_COLUMNS}


# --------------------------------------------------------------------------------------------
# Name lookups
# --------------------------------------------------------------------------------------------


class _Names:
    """Small per-export lookups: campaign slug and dataset, model names, image names and categories."""

    def __init__(self) -> None:
        self.campaigns = {
            pk: (slug, ds) for pk, slug, ds in Campaign.objects.values_list("pk", "slug", "dataset__name")
        }
        self.models = dict(ModelEntry.objects.values_list("pk", "name"))
        self.images: dict[int, tuple[str, str]] = {}
        self.comparisons: dict[int, dict] = {}

    def load_images(self, ids: Iterable[int]) -> None:
        wanted = {int(i) for i in ids if i is not None}
        missing = wanted - self.images.keys()
        if not missing:
            return
        if len(self.images) + len(missing) > _CACHE_LIMIT:  # start afresh: refetch all this batch needs
            self.images.clear()
            missing = wanted
        for pk, name, category in Image.objects.filter(pk__in=missing).values_list("pk", "name", "category"):
            self.images[pk] = (name, category)

    def image(self, pk: int | None) -> str | None:
        return None if pk is None else self.images[int(pk)][0]

    def category(self, pk: int) -> str:
        return self.images[int(pk)][1]

    def model(self, pk: int | None) -> str | None:
        return None if pk is None else self.models.get(pk)

    def load_comparisons(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        missing = wanted - self.comparisons.keys()
        if not missing:
            return
        if len(self.comparisons) + len(missing) > _CACHE_LIMIT:  # start afresh: refetch all this batch needs
            self.comparisons.clear()
            missing = wanted
        rows = list(
            Comparison.objects.filter(pk__in=missing).values_list(
                "pk",
                "campaign_id",
                "reference_image_id",
                "text",
                "set_a_images",
                "set_b_images",
                "set_a_model_id",
                "set_b_model_id",
                "is_gold",
                "query__captions",
                "query__target_id",
                "query__category",
            )
        )
        self.load_images(i for r in rows for i in (r[2], r[10], *r[4], *r[5]))
        for pk, campaign_id, ref, text, set_a, set_b, model_a, model_b, gold, captions, target, category in rows:
            slug, dataset = self.campaigns[campaign_id]
            self.comparisons[pk] = {
                "campaign": slug,
                "dataset": dataset,
                "reference_image": self.image(ref),
                "captions": list(captions or []),
                "text": text,
                "target_image": self.image(target),
                "set_a_images": [self.image(i) for i in set_a],
                "set_b_images": [self.image(i) for i in set_b],
                "set_a_model": self.model(model_a),
                "set_b_model": self.model(model_b),
                "gold": gold,
                "_category": category or self.category(ref),
            }


def _chunks(iterator: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------------------------
# Votes
# --------------------------------------------------------------------------------------------


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def votes_queryset(params: ExportParams) -> QuerySet[Vote]:
    """The votes the filters keep (any campaign when none is named)."""
    qs = Vote.objects.all()
    if params.campaign_ids:
        qs = qs.filter(comparison__campaign_id__in=params.campaign_ids)
    if params.since:
        qs = qs.filter(created_at__gte=_day_start(params.since))
    if params.until:
        qs = qs.filter(created_at__lt=_day_start(params.until + dt.timedelta(days=1)))
    if not params.include_excluded:
        qs = qs.counted()
    if not params.include_gold:
        qs = qs.filter(comparison__is_gold=False)
    return qs


def vote_rows(
    params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK, with_categories: bool = False
) -> Iterator[list[dict]]:
    """One dict per vote (keys of :data:`VOTE_COLUMNS`), in chunks of up to ``chunk_size``, by vote id.

    With ``with_categories`` each row also carries ``_category`` (see :func:`pair_rows`)."""
    names = _Names()
    qs = (
        votes_queryset(params)
        .order_by("pk")
        .values_list(
            "pk",
            "comparison_id",
            "annotator__pseudonym",
            "annotator__flagged",
            "choice",
            "rating_a",
            "rating_b",
            "irrelevant",
            "excluded",
            "time_ms",
            "created_at",
        )
    )
    for chunk in _chunks(qs.iterator(chunk_size=chunk_size), chunk_size):
        names.load_comparisons({r[1] for r in chunk})
        rows = []
        for pk, cid, pseudonym, flagged, choice, rating_a, rating_b, irrelevant, excluded, time_ms, created in chunk:
            c = names.comparisons[cid]
            rows.append(
                {
                    "vote_id": pk,
                    "campaign": c["campaign"],
                    "comparison_id": cid,
                    "dataset": c["dataset"],
                    "reference_image": c["reference_image"],
                    "captions": c["captions"],
                    "text": c["text"],
                    "target_image": c["target_image"],
                    "set_a_images": c["set_a_images"],
                    "set_b_images": c["set_b_images"],
                    "set_a_model": c["set_a_model"],
                    "set_b_model": c["set_b_model"],
                    "annotator": pseudonym,
                    "choice": choice,
                    "tie": choice == Vote.Choice.TIE,
                    "rating_a": rating_a,
                    "rating_b": rating_b,
                    "irrelevant": irrelevant,
                    "gold": c["gold"],
                    "excluded": bool(excluded or flagged),
                    "time_ms": time_ms,
                    "created_at": created,
                }
            )
            if with_categories:
                rows[-1]["_category"] = c["_category"]
        yield rows


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------


def comparisons_queryset(params: ExportParams) -> QuerySet[Comparison]:
    """Comparisons with aggregates over the votes the filters keep; only those with a kept vote."""
    q = Q()
    if params.since:
        q &= Q(votes__created_at__gte=_day_start(params.since))
    if params.until:
        q &= Q(votes__created_at__lt=_day_start(params.until + dt.timedelta(days=1)))
    if not params.include_excluded:
        q &= counted_votes_q("votes__")
    qs = Comparison.objects.all()
    if params.campaign_ids:
        qs = qs.filter(campaign_id__in=params.campaign_ids)
    if not params.include_gold:
        qs = qs.filter(is_gold=False)
    return qs.annotate(
        n_votes=Count("votes", filter=q),
        n_a=Count("votes", filter=q & Q(votes__choice="a")),
        n_b=Count("votes", filter=q & Q(votes__choice="b")),
        n_tie=Count("votes", filter=q & Q(votes__choice="tie")),
        n_irrelevant=Count("votes", filter=q & Q(votes__irrelevant=True)),
        mean_a=Avg("votes__rating_a", filter=q),
        mean_b=Avg("votes__rating_b", filter=q),
    ).filter(n_votes__gt=0)


def comparison_rows(params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[dict]]:
    """One dict per comparison (keys of :data:`COMPARISON_COLUMNS`), in chunks, by comparison id."""
    names = _Names()
    qs = (
        comparisons_queryset(params)
        .order_by("pk")
        # The names come from comparisons_queryset's .annotate(), which its return type does not carry.
        .values_list("pk", "n_votes", "n_a", "n_b", "n_tie", "n_irrelevant", "mean_a", "mean_b")  # type: ignore[misc]
    )
    for chunk in _chunks(qs.iterator(chunk_size=chunk_size), chunk_size):
        names.comparisons.clear()
        names.load_comparisons(r[0] for r in chunk)
        rows = []
        for pk, n, n_a, n_b, n_tie, n_irr, mean_a, mean_b in chunk:
            c = names.comparisons[pk]
            labels = ["a"] * n_a + ["b"] * n_b + ["tie"] * n_tie
            rows.append(
                {
                    "comparison_id": pk,
                    **{
                        k: c[k]
                        for k in (
                            "campaign",
                            "dataset",
                            "reference_image",
                            "captions",
                            "text",
                            "target_image",
                            "set_a_images",
                            "set_b_images",
                            "set_a_model",
                            "set_b_model",
                            "gold",
                        )
                    },
                    "votes": n,
                    "votes_a": n_a,
                    "votes_b": n_b,
                    "ties": n_tie,
                    "irrelevant": n_irr,
                    "mean_rating_a": float(mean_a) if mean_a is not None else None,
                    "mean_rating_b": float(mean_b) if mean_b is not None else None,
                    "majority": majority(labels),
                    "agreement": pairwise_agreement({pk: labels}),
                }
            )
        yield rows


# --------------------------------------------------------------------------------------------
# Frozen benchmark pairs
# --------------------------------------------------------------------------------------------


def pair_rows(
    params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK, with_categories: bool = False
) -> Iterator[list[dict]]:
    """One dict per pair of the benchmark version (keys of :data:`PAIR_COLUMNS`), by position.

    With ``with_categories`` each row also carries ``_category``: the linked query's category, else the
    reference image's (the HP-FashionIQ writer files all of a question's images under it, as the release does).
    """
    benchmark = benchmark_of(params)
    if benchmark is None:
        raise ExportError("benchmark: pair rows need a benchmark version")
    names = _Names()
    pseudonyms: dict[str, str] = {}
    if benchmark.campaign_id is not None:  # frozen votes name annotators by id: publish their pseudonym
        pseudonyms = {
            str(pk): p
            for pk, p in Annotator.objects.filter(campaign_id=benchmark.campaign_id).values_list("pk", "pseudonym")
        }
    qs = (
        BenchmarkPair.objects.filter(benchmark=benchmark)
        .order_by("position")
        .values_list(
            "position",
            "source_key",
            "reference_id",
            "text",
            "set1_image_ids",
            "set2_image_ids",
            "set1_model_id",
            "set2_model_id",
            "preference",
            "likert1",
            "likert2",
            "votes",
            "query__captions",
            "query__target_id",
            "query__category",
        )
    )
    for chunk in _chunks(qs.iterator(chunk_size=chunk_size), chunk_size):
        names.load_images(i for r in chunk for i in (r[2], r[13], *r[4], *r[5]))
        rows = []
        for (
            position,
            key,
            ref,
            text,
            set1,
            set2,
            model1,
            model2,
            preference,
            likert1,
            likert2,
            votes,
            captions,
            target,
            category,
        ) in chunk:
            public_votes = []
            for v in votes or []:
                v = dict(v)
                label = str(v.get("annotator", ""))
                v["annotator"] = pseudonyms.get(label, label) if benchmark.campaign_id is not None else label
                if benchmark.campaign_id is not None and label not in pseudonyms:
                    v["annotator"] = "unknown"  # never publish an internal id
                public_votes.append(v)
            row = {
                "benchmark": benchmark.name,
                "version": benchmark.version,
                "position": position,
                "source_key": key,
                "dataset": benchmark.dataset.name,
                "reference_image": names.image(ref),
                "captions": list(captions or []),
                "text": text,
                "target_image": names.image(target),
                "set1_images": [names.image(i) for i in set1],
                "set2_images": [names.image(i) for i in set2],
                "set1_model": names.model(model1),
                "set2_model": names.model(model2),
                "preference": preference,
                "likert1": likert1,
                "likert2": likert2,
                "votes": len(public_votes),
                "votes_json": json.dumps(public_votes, sort_keys=True),
            }
            if with_categories:
                row["_category"] = category or names.category(ref)
            rows.append(row)
        yield rows


def benchmark_of(params: ExportParams) -> PreferenceBenchmark | None:
    return (
        PreferenceBenchmark.objects.select_related("dataset").get(pk=params.benchmark_id)
        if params.benchmark_id is not None
        else None
    )


def rows_total(params: ExportParams) -> int:
    """How many rows the export will have (for progress)."""
    level = params.effective_level
    if level == "pairs":
        return BenchmarkPair.objects.filter(benchmark_id=params.benchmark_id).count()
    if level == "comparisons":
        return comparisons_queryset(params).count()
    return votes_queryset(params).count()


def rows_iter(
    params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK, with_categories: bool = False
) -> Iterator[list[dict]]:
    """The chunks of the export's level (``with_categories``: see :func:`vote_rows`; not for comparisons)."""
    level = params.effective_level
    if level == "pairs":
        return pair_rows(params, chunk_size=chunk_size, with_categories=with_categories)
    if level == "comparisons":
        return comparison_rows(params, chunk_size=chunk_size)
    return vote_rows(params, chunk_size=chunk_size, with_categories=with_categories)


def image_files(dataset: str, names: set[str]) -> dict[str, tuple[str, bytes] | None]:
    """The files of images ``names`` of dataset ``dataset``: ``{name: (file name, bytes)}``, None for an image
    whose file is missing or lies outside the dataset's image root (the Hugging Face folder's Image columns)."""
    from pathlib import Path

    out: dict[str, tuple[str, bytes] | None] = {}
    rows = Image.objects.filter(dataset__name=dataset, name__in=names).values_list(
        "name", "file_path", "dataset__image_root"
    )
    for name, file_path, image_root in rows:
        root = Path(image_root).resolve()
        path = (root / file_path).resolve()
        out[name] = (path.name, path.read_bytes()) if path.is_relative_to(root) and path.is_file() else None
    return out


def rows_preview(params: ExportParams, *, limit: int = 10) -> tuple[int, list[str], list[dict]]:
    """What an export would hold: ``(row count, column names, the first `limit` rows)``."""
    level = params.effective_level
    first = next(iter(rows_iter(params, chunk_size=max(1, limit))), [])
    return rows_total(params), [c[0] for c in COLUMNS[level]], first[:limit]


def vote_date_range() -> tuple[dt.date | None, dt.date | None]:
    """The calendar days (project time zone) of the first and the last vote on the platform."""
    first = Vote.objects.order_by("created_at").values_list("created_at", flat=True).first()
    last = Vote.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    day = lambda t: timezone.localtime(t).date() if t is not None else None  # noqa: E731
    return day(first), day(last)


# --------------------------------------------------------------------------------------------
# Figures for the dataset card
# --------------------------------------------------------------------------------------------


class AgreementAccumulator:
    """Pairwise agreement and nominal Krippendorff's alpha over units added one at a time as label counts;
    equal to :func:`annotate.quality.pairwise_agreement` / ``krippendorff_alpha_nominal`` on the same units,
    in constant memory."""

    def __init__(self) -> None:
        self.agree = 0
        self.pairs = 0
        self.coincidence: dict[tuple[str, str], float] = {}

    def add(self, counts: dict[str, int]) -> None:
        counts = {k: n for k, n in counts.items() if n}
        m = sum(counts.values())
        if m < 2:
            return
        self.pairs += m * (m - 1) // 2
        self.agree += sum(n * (n - 1) // 2 for n in counts.values())
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                self.coincidence[(c, k)] = self.coincidence.get((c, k), 0.0) + pairs / (m - 1)

    @property
    def pairwise_agreement(self) -> float | None:
        return self.agree / self.pairs if self.pairs else None

    @property
    def alpha(self) -> float | None:
        totals: dict[str, float] = {}
        for (c, _k), value in self.coincidence.items():
            totals[c] = totals.get(c, 0.0) + value
        n = sum(totals.values())
        if n <= 1:
            return None
        observed = sum(v for (c, k), v in self.coincidence.items() if c != k)
        expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
        if expected == 0:
            return None
        return 1.0 - (n - 1) * observed / expected


def card_figures(params: ExportParams) -> dict:
    """Counts and agreement for the dataset card.

    Votes and comparisons: over the exported votes; agreement over non-gold comparisons, counting only
    non-excluded votes (as quality control and the benchmark freeze do). Benchmarks: the stored figures.
    """
    if params.benchmark_id is not None:
        b = benchmark_of(params)
        assert b is not None
        pairs = BenchmarkPair.objects.filter(benchmark=b)
        return {
            "pairs": b.n_pairs,
            "set1_preferred": pairs.filter(preference=1).count(),
            "set2_preferred": pairs.filter(preference=2).count(),
            "ties": pairs.filter(preference=0).count(),
            "votes_per_pair": b.votes_per_pair,
            "pairwise_agreement": b.human_agreement,
            "krippendorff_alpha": b.human_alpha,
            "tie_policy": b.tie_policy,
            "source": b.source,
        }
    votes = votes_queryset(params)
    counts = votes.aggregate(
        votes=Count("pk"),
        comparisons=Count("comparison", distinct=True),
        annotators=Count("annotator", distinct=True),
        ties=Count("pk", filter=Q(choice="tie")),
        irrelevant=Count("pk", filter=Q(irrelevant=True)),
        gold=Count("pk", filter=Q(comparison__is_gold=True)),
        excluded=Count("pk", filter=~counted_votes_q()),
    )
    strict = ExportParams(**{**asdict(params), "include_excluded": False, "include_gold": False})
    acc = AgreementAccumulator()
    kept = comparisons_queryset(strict).order_by("pk")
    for _pk, n_a, n_b, n_tie in kept.values_list("pk", "n_a", "n_b", "n_tie").iterator(  # type: ignore[misc]
        chunk_size=5000
    ):
        acc.add({"a": n_a, "b": n_b, "tie": n_tie})
    counts["campaigns"] = sorted(votes.order_by().values_list("comparison__campaign__slug", flat=True).distinct())
    counts["pairwise_agreement"] = acc.pairwise_agreement
    counts["krippendorff_alpha"] = acc.alpha
    return counts


# --------------------------------------------------------------------------------------------
# Jobs (access checks in one place)
# --------------------------------------------------------------------------------------------


class JobNotFound(Exception):
    """No such job for this caller (non-staff callers never see any)."""


def _is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def export_jobs_for_user(user) -> QuerySet:
    """Jobs the caller may see: all of them for staff, none for anyone else."""
    from hpbench.exports.models import ExportJob

    qs = ExportJob.objects.select_related("requested_by").order_by("-created_at")
    return qs if _is_staff(user) else qs.none()


def export_job_get_for_user(user, job_id: int):
    """The job, for staff; raises :class:`JobNotFound` otherwise."""
    job = export_jobs_for_user(user).filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


def export_job_for_download(user, token: str):
    """The finished job with this token whose file exists, for staff; raises :class:`JobNotFound` otherwise
    (wrong token, not staff, not finished, file gone)."""
    import os

    from hpbench import media
    from hpbench.exports.models import ExportJob

    if not token or len(token) > 64:
        raise JobNotFound(token)
    job = export_jobs_for_user(user).filter(token=token, status=ExportJob.Status.FINISHED).first()
    if job is None or not job.file_path:
        raise JobNotFound(token)
    # A media storage name; jobs finished before exports went through the storage kept an absolute path.
    exists = os.path.isfile(job.file_path) if os.path.isabs(job.file_path) else media.storage().exists(job.file_path)
    if not exists:
        raise JobNotFound(token)
    return job
