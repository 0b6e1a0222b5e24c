"""Preference benchmarks: stored from pair specs, imported from HP-FashionIQ files, frozen from a campaign."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection, transaction

from hpbench.catalog.models import Dataset, Image, Query
from hpbench.leaderboard import hpfiq
from hpbench.leaderboard.models import BenchmarkPair, PreferenceBenchmark
from hpbench.metrics.reliability import majority

TIE_POLICIES = tuple(PreferenceBenchmark.TiePolicy.values)


@dataclass(frozen=True)
class PairSpec:
    """One judged pair, before it is stored. ``preference`` is 1, 2 or 0 (tie)."""

    reference_id: int
    text: str
    set1: tuple[int, ...]
    set2: tuple[int, ...]
    preference: int
    query_id: int | None = None
    set1_model_id: int | None = None
    set2_model_id: int | None = None
    likert1: float | None = None
    likert2: float | None = None
    votes: tuple[dict, ...] = ()
    source_key: str = ""
    n_votes: int | None = None  # from a campaign: the votes its comparison got, and why it stopped asking
    stop_reason: str = ""
    selection_weight: float = 1.0  # the design weight relative to uniform (informative pair selection)
    selection_round: int = 0  # informative pair selection: the round that drew it, and its probability in it
    selection_pi: float | None = None
    # Every model whose top-k is the set (its maker first): the pairs a model is held out of are those where it
    # made neither set. Empty when unknown (imported pairs).
    set1_makers: tuple[int, ...] = ()
    set2_makers: tuple[int, ...] = ()
    category: str = ""  # the pair's own category: its query's, or HP-FashionIQ's image_data/<category>/ folder


#: PairSpec fields left out of the fingerprint at their defaults, so versions stored before they existed match.
_FINGERPRINT_DEFAULTS = {
    "n_votes": None, "stop_reason": "", "selection_weight": 1.0, "selection_round": 0, "selection_pi": None,
    "set1_makers": (), "set2_makers": (), "category": "",
}


@dataclass
class BenchmarkResult:
    benchmark: PreferenceBenchmark
    created: bool
    report: dict = field(default_factory=dict)


def _fingerprint(*, dataset: Dataset, tie_policy: str, pairs: Sequence[PairSpec]) -> str:
    rows = []
    for p in pairs:
        row = asdict(p)
        for key, default in _FINGERPRINT_DEFAULTS.items():
            if row[key] == default:
                del row[key]
        rows.append(row)
    payload = {"dataset": dataset.pk, "tie_policy": tie_policy, "pairs": rows}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()


def human_ceiling(pairs: Sequence[PairSpec]) -> tuple[float | None, float | None, float]:
    """(pairwise agreement, Krippendorff's alpha, mean votes per pair) over the pairs with 2+ votes.

    Both figures are ``None`` when no pair has two votes (e.g. HP-FashionIQ: one annotator per question).
    """
    from hpbench.metrics import reliability

    mean_votes = float(np.mean([len(p.votes) for p in pairs])) if pairs else 0.0
    units = [[int(v["choice"]) for v in p.votes] for p in pairs if len(p.votes) >= 2]
    if not units:
        return None, None, mean_votes
    summary = reliability.reliability_summary(units)
    return summary["pairwise_agreement"], summary["krippendorff_alpha"], mean_votes


@transaction.atomic
def benchmark_store(
    *,
    name: str,
    source: str,
    dataset: Dataset,
    pairs: Sequence[PairSpec],
    tie_policy: str = PreferenceBenchmark.TiePolicy.KEEP,
    campaign: Any = None,
    notes: str = "",
    report: dict | None = None,
    labels_public: bool = False,
    hidden_split_of: PreferenceBenchmark | None = None,
) -> BenchmarkResult:
    """Freeze ``pairs`` as benchmark ``name``: the same content as the latest version returns that version
    (``created=False``); new content becomes version N+1, the active one (older versions are deactivated).

    ``labels_public`` marks a benchmark whose verdicts are published; ``hidden_split_of`` makes it the hidden
    split of that benchmark (verdicts never exported or shown). Raises ``ValueError`` for no pairs, a bad name or
    tie policy.
    """
    if not re.fullmatch(r"[-a-zA-Z0-9_]+", name or ""):
        raise ValueError(f"benchmark name {name!r}: use letters, digits, '-' and '_' only")
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie policy {tie_policy!r}: use one of {', '.join(TIE_POLICIES)}")
    if not pairs:
        raise ValueError(f"benchmark {name}: no pairs to freeze")
    if connection.vendor == "postgresql":  # serialise versioning of one name (no row to lock on the first)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"hpbench.benchmark:{name}"])
    fingerprint = _fingerprint(dataset=dataset, tie_policy=tie_policy, pairs=pairs)
    latest = PreferenceBenchmark.objects.filter(name=name).order_by("-version").first()
    if latest is not None and latest.fingerprint == fingerprint:
        return BenchmarkResult(benchmark=latest, created=False, report=latest.report)
    agreement, alpha, mean_votes = human_ceiling(pairs)
    from hpbench.leaderboard.services.figures import benchmark_ceiling_figures

    ceiling = benchmark_ceiling_figures(
        human=[p.preference for p in pairs], votes_by_pair=[[int(v["choice"]) for v in p.votes] for p in pairs],
        weights=[p.selection_weight for p in pairs],
    )
    PreferenceBenchmark.objects.filter(name=name, is_active=True).update(is_active=False)
    benchmark = PreferenceBenchmark.objects.create(
        name=name,
        version=(latest.version + 1) if latest else 1,
        source=source,
        dataset=dataset,
        campaign=campaign,
        tie_policy=tie_policy,
        fingerprint=fingerprint,
        notes=notes,
        n_pairs=len(pairs),
        votes_per_pair=mean_votes,
        human_agreement=agreement,
        human_alpha=alpha,
        **ceiling,
        report=report or {},
        is_active=True,
        labels_public=labels_public,
        hidden_split_of=hidden_split_of,
    )
    BenchmarkPair.objects.bulk_create(
        [
            BenchmarkPair(
                benchmark=benchmark,
                position=i,
                query_id=p.query_id,
                reference_id=p.reference_id,
                text=p.text,
                set1_image_ids=list(p.set1),
                set2_image_ids=list(p.set2),
                set1_model_id=p.set1_model_id,
                set2_model_id=p.set2_model_id,
                set1_makers=_makers(p.set1_model_id, p.set1_makers),
                set2_makers=_makers(p.set2_model_id, p.set2_makers),
                preference=p.preference,
                likert1=p.likert1,
                likert2=p.likert2,
                votes=list(p.votes),
                source_key=p.source_key,
                n_votes=p.n_votes,
                stop_reason=p.stop_reason,
                selection_weight=p.selection_weight,
                selection_round=p.selection_round,
                selection_pi=p.selection_pi,
                category=p.category,
            )
            for i, p in enumerate(pairs)
        ],
        batch_size=1000,
    )
    return BenchmarkResult(benchmark=benchmark, created=True, report=benchmark.report)


def _makers(model_id: int | None, makers: Sequence[int]) -> list[int]:
    """The set's makers as stored: its maker first, then the others with the identical set, no repeats."""
    return list(dict.fromkeys(([model_id] if model_id is not None else []) + [int(m) for m in makers]))


def set_makers(*, campaign: Any, comparisons: Sequence[Any]) -> dict[tuple[int, str], tuple[int, ...]]:
    """``{(comparison id, "a"|"b"): ids of every model whose top-k is that set}``: the model that made it, and any
    model with a finished retrieval run on the campaign's dataset and split (its latest) whose top ``set_size``
    images for the query are the same images. A model whose results cannot be read is left out (its own set
    is still known from the comparison)."""
    from hpbench.catalog.models import RetrievalRun
    from hpbench.catalog.results import read_topk_stored

    k = campaign.set_size
    latest: dict[int, Any] = {}
    runs = RetrievalRun.objects.filter(
        dataset=campaign.dataset, split=campaign.split, status=RetrievalRun.Status.FINISHED
    ).exclude(results_path="").order_by("model_id", "-finished_at", "-created_at", "-pk")
    for run in runs.only("id", "model_id", "results_path"):
        latest.setdefault(run.model_id, run)
    by_set: dict[tuple[int, frozenset[int]], list[int]] = {}
    wanted = {c.query_id for c in comparisons}
    for model_id, run in sorted(latest.items()):
        try:
            topk = read_topk_stored(run.results_path).as_dict(k)
        except (OSError, KeyError, ValueError):
            continue
        for query_id in wanted:
            ids = topk.get(query_id)
            if ids is not None and len(ids) >= k:
                by_set.setdefault((query_id, frozenset(int(i) for i in ids[:k])), []).append(model_id)
    out: dict[tuple[int, str], tuple[int, ...]] = {}
    for c in comparisons:
        for side, images in (("a", c.set_a_images), ("b", c.set_b_images)):
            found = by_set.get((c.query_id, frozenset(int(i) for i in images)), [])
            out[(c.id, side)] = tuple(found)
    return out


def benchmark_import_hpfiq(
    *,
    path: str | Path,
    dataset: Dataset,
    name: str = "hp-fashioniq",
    progress: Callable[[int, int], None] | None = None,
) -> BenchmarkResult:
    """Import the released HP-FashionIQ file onto ``dataset``'s images (matched by name = ASIN).

    Questions naming an image the dataset lacks are skipped and reported (``report["missing_images"]``,
    ``report["skipped_questions"]``). A question whose (reference, target) matches a Query of the dataset
    is linked to it. One transaction; re-importing the same content returns the same version.
    Raises ``hpfiq.HpfiqFormatError`` for a malformed file and ``ValueError`` when nothing maps.
    """
    questions = hpfiq.load_questions(path)
    names = hpfiq.image_names(questions)
    ids = dict(Image.objects.filter(dataset=dataset, name__in=list(names)).values_list("name", "id"))
    queries: dict[tuple[int, int], int] = {}
    for qid, ref, target in (
        Query.objects.filter(dataset=dataset, reference_id__in=list(ids.values()))
        .order_by("-id")
        .values_list("id", "reference_id", "target_id")
    ):
        queries[(ref, target)] = qid  # ordered by -id: the lowest id wins
    missing: set[str] = set()
    skipped: list[str] = []
    pairs: list[PairSpec] = []
    for n, q in enumerate(questions, start=1):
        needed = [q.reference, *q.set1, *q.set2]
        absent = [r.name for r in needed if r.name not in ids]
        if absent:
            missing.update(absent)
            skipped.append(q.key)
        else:
            target_id = ids.get(q.target.name) if q.target else None
            pairs.append(
                PairSpec(
                    reference_id=ids[q.reference.name],
                    text=q.text,
                    set1=tuple(ids[r.name] for r in q.set1),
                    set2=tuple(ids[r.name] for r in q.set2),
                    preference=q.preferred,
                    query_id=queries.get((ids[q.reference.name], target_id)) if target_id else None,
                    likert1=float(q.likert1),
                    likert2=float(q.likert2),
                    votes=({"annotator": q.annotator, "choice": q.preferred, "likert1": q.likert1,
                            "likert2": q.likert2},),
                    source_key=q.key,
                    category=q.reference.category,
                )
            )
        if progress is not None:
            progress(n, len(questions))
    report = {
        "file": str(path),
        "questions": len(questions),
        "pairs": len(pairs),
        "linked_queries": sum(p.query_id is not None for p in pairs),
        "skipped_questions": skipped,
        "missing_images": sorted(missing),
    }
    if not pairs:
        raise ValueError(
            f"{path}: none of the {len(questions)} questions maps onto dataset {dataset.name} "
            f"({len(missing)} image names missing, e.g. {', '.join(sorted(missing)[:5])})"
        )
    result = benchmark_store(
        name=name,
        source=PreferenceBenchmark.Source.IMPORTED,
        dataset=dataset,
        pairs=pairs,
        tie_policy=PreferenceBenchmark.TiePolicy.KEEP,
        notes=f"Imported from {Path(path).name} (HP-FashionIQ, QuRe ICML 2025).",
        report=report,
        labels_public=True,  # the released file holds every verdict
    )
    result.report = report
    return result


def collection_settings(*, campaign: Any) -> dict:
    """How a campaign collected its votes, as recorded in its frozen benchmark's report."""
    return {
        "adaptive_overlap": bool(campaign.adaptive_overlap),
        "min_votes_per_pair": campaign.min_votes_per_pair,
        "votes_per_pair": campaign.votes_per_pair,
        "overlap_confidence": campaign.overlap_confidence,
        "pair_selection": campaign.pair_selection,
        "random_share": campaign.random_share,
    }


def hidden_pair(*, seed: int, source_key: str, share: float) -> bool:
    """Whether a pair goes to the hidden split: a hash of the campaign's seed and the pair's source key below
    ``share`` (deterministic; about ``share`` of the pairs)."""
    digest = hashlib.sha256(f"hpbench.hidden:{seed}:{source_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@transaction.atomic
def benchmark_freeze(
    *, campaign: Any, tie_policy: str = PreferenceBenchmark.TiePolicy.KEEP, name: str | None = None,
    hidden_share: float = 0.0,
) -> BenchmarkResult:
    """Freeze a campaign's votes into a benchmark version.

    With ``hidden_share`` > 0 about that share of the pairs (:func:`hidden_pair`, by the campaign's seed) is
    frozen apart as the hidden split ``<name>-hidden`` (``hidden_split_of`` the returned benchmark): its verdicts
    are never exported or shown and score files are ranked on it; ``report["hidden_pairs"]`` counts them.
    Raises ``ValueError`` for a share outside [0, 1).

    Per comparison (gold comparisons left out): the votes of flagged (excluded) annotators and excluded votes are
    left out; a comparison whose remaining votes are in majority "both irrelevant" is dropped; the
    verdict is the strict majority of a / b / tie (level at the top = tie); with ``tie_policy="drop"``
    tied verdicts are dropped, with ``"keep-as-tie"`` they are kept as human ties. Likert scores are the
    means of the ratings given. Same votes give the same version (see :func:`benchmark_store`).
    """
    from annotate.models import Comparison, Vote

    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie policy {tie_policy!r}: use one of {', '.join(TIE_POLICIES)}")
    if not 0.0 <= hidden_share < 1.0:
        raise ValueError(f"hidden share must be in [0, 1), got {hidden_share}")
    comparisons = list(
        Comparison.objects.filter(campaign=campaign, is_gold=False).order_by("id")
    )
    category_of = dict(
        Query.objects.filter(pk__in={c.query_id for c in comparisons if c.query_id}).values_list("id", "category")
    )
    votes_by_comparison: dict[int, list] = {}
    valid_votes = Vote.objects.counted().filter(comparison__campaign=campaign, comparison__is_gold=False).order_by("id")
    for vote in valid_votes:
        votes_by_comparison.setdefault(vote.comparison_id, []).append(vote)
    code = {"a": 1, "b": 2, "tie": 0}
    makers = set_makers(campaign=campaign, comparisons=[c for c in comparisons if c.id in votes_by_comparison])
    pairs: list[PairSpec] = []
    dropped = {"no_votes": 0, "both_irrelevant": 0, "tie": 0}
    for comparison in comparisons:
        votes = votes_by_comparison.get(comparison.id, [])
        if not votes:
            dropped["no_votes"] += 1
            continue
        if sum(bool(v.irrelevant) for v in votes) * 2 > len(votes):
            dropped["both_irrelevant"] += 1
            continue
        verdict = majority([v.choice for v in votes])
        if verdict == "tie" and tie_policy == PreferenceBenchmark.TiePolicy.DROP:
            dropped["tie"] += 1
            continue
        ratings_a = [v.rating_a for v in votes if v.rating_a is not None]
        ratings_b = [v.rating_b for v in votes if v.rating_b is not None]
        pairs.append(
            PairSpec(
                reference_id=comparison.reference_image_id,
                text=comparison.text,
                set1=tuple(int(i) for i in comparison.set_a_images),
                set2=tuple(int(i) for i in comparison.set_b_images),
                preference=code[verdict],
                query_id=comparison.query_id,
                set1_model_id=comparison.set_a_model_id,
                set2_model_id=comparison.set_b_model_id,
                set1_makers=makers.get((comparison.id, "a"), ()),
                set2_makers=makers.get((comparison.id, "b"), ()),
                likert1=float(np.mean(ratings_a)) if ratings_a else None,
                likert2=float(np.mean(ratings_b)) if ratings_b else None,
                votes=tuple(
                    {"annotator": str(v.annotator_id), "choice": code[v.choice], "likert1": v.rating_a,
                     "likert2": v.rating_b, "irrelevant": bool(v.irrelevant)}
                    for v in sorted(votes, key=lambda v: (v.annotator_id, v.id))
                ),
                source_key=f"comparison:{comparison.id}",
                n_votes=comparison.votes_count,
                stop_reason=comparison.stop_reason
                or ("max_votes" if comparison.votes_count >= comparison.target_votes > 0 else "open"),
                selection_weight=comparison.selection_weight,
                selection_round=comparison.selection_round,
                selection_pi=comparison.selection_pi,
                category=category_of.get(comparison.query_id, ""),
            )
        )
    apart = [hidden_share > 0 and hidden_pair(seed=campaign.seed, source_key=p.source_key, share=hidden_share)
             for p in pairs]
    hidden = [p for p, h in zip(pairs, apart, strict=True) if h]
    pairs = [p for p, h in zip(pairs, apart, strict=True) if not h]
    report = {
        "comparisons": len(comparisons),
        "pairs": len(pairs),
        "dropped": dropped,
        "collection": collection_settings(campaign=campaign),
    }
    if hidden_share > 0:
        report["hidden_pairs"] = len(hidden)
    name = name or f"campaign-{campaign.slug}"
    result = benchmark_store(
        name=name,
        source=PreferenceBenchmark.Source.CAMPAIGN,
        dataset=campaign.dataset,
        pairs=pairs,
        tie_policy=tie_policy,
        campaign=campaign,
        notes=f"Frozen from campaign {campaign}; majority vote, tie policy {tie_policy}.",
        report=report,
    )
    if hidden:
        benchmark_store(
            name=f"{name}-hidden",
            source=PreferenceBenchmark.Source.CAMPAIGN,
            dataset=campaign.dataset,
            pairs=hidden,
            tie_policy=tie_policy,
            campaign=campaign,
            notes=f"Hidden split of {result.benchmark}: verdicts never exported or shown; score files rank here.",
            report={"hidden_split_of": result.benchmark.label, "pairs": len(hidden)},
            hidden_split_of=result.benchmark,
        )
    result.report = report
    return result
