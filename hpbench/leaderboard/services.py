"""Writes for the leaderboard: benchmarks (import, freeze), model scores, submissions.

Web-safe: nothing here imports torch. Scoring itself runs in a worker (``worker/scoring.py``), which
hands its per-pair set scores to :func:`model_score_store`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from hpbench import dispatch
from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
from hpbench.inputs import json_problem, text_problem
from hpbench.leaderboard import hpfiq
from hpbench.leaderboard.models import BenchmarkPair, ModelScore, PreferenceBenchmark, Submission
from hpbench.metrics.reliability import majority

BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0
TIE_POLICIES = tuple(PreferenceBenchmark.TiePolicy.values)


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


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
    selection_weight: float = 1.0  # 1/π relative to a uniform draw (informative pair selection)


#: PairSpec fields left out of the fingerprint at their defaults, so versions stored before they existed match.
_FINGERPRINT_DEFAULTS = {"n_votes": None, "stop_reason": "", "selection_weight": 1.0}


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
) -> BenchmarkResult:
    """Freeze ``pairs`` as benchmark ``name``: the same content as the latest version returns that version
    (``created=False``); new content becomes version N+1, the active one (older versions are deactivated).

    Raises ``ValueError`` for no pairs, a bad name or tie policy.
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
        report=report or {},
        is_active=True,
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
                preference=p.preference,
                likert1=p.likert1,
                likert2=p.likert2,
                votes=list(p.votes),
                source_key=p.source_key,
                n_votes=p.n_votes,
                stop_reason=p.stop_reason,
                selection_weight=p.selection_weight,
            )
            for i, p in enumerate(pairs)
        ],
        batch_size=1000,
    )
    return BenchmarkResult(benchmark=benchmark, created=True, report=benchmark.report)


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


def benchmark_freeze(
    *, campaign: Any, tie_policy: str = PreferenceBenchmark.TiePolicy.KEEP, name: str | None = None
) -> BenchmarkResult:
    """Freeze a campaign's votes into a benchmark version.

    Per comparison (gold comparisons left out): the votes of flagged (excluded) annotators and excluded votes are
    left out; a comparison whose remaining votes are in majority "both irrelevant" is dropped; the
    verdict is the strict majority of a / b / tie (level at the top = tie); with ``tie_policy="drop"``
    tied verdicts are dropped, with ``"keep-as-tie"`` they are kept as human ties. Likert scores are the
    means of the ratings given. Same votes give the same version (see :func:`benchmark_store`).
    """
    from annotate.models import Comparison, Vote

    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie policy {tie_policy!r}: use one of {', '.join(TIE_POLICIES)}")
    comparisons = list(
        Comparison.objects.filter(campaign=campaign, is_gold=False).order_by("id")
    )
    votes_by_comparison: dict[int, list] = {}
    valid_votes = Vote.objects.counted().filter(comparison__campaign=campaign, comparison__is_gold=False).order_by("id")
    for vote in valid_votes:
        votes_by_comparison.setdefault(vote.comparison_id, []).append(vote)
    code = {"a": 1, "b": 2, "tie": 0}
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
            )
        )
    report = {
        "comparisons": len(comparisons),
        "pairs": len(pairs),
        "dropped": dropped,
        "collection": collection_settings(campaign=campaign),
    }
    result = benchmark_store(
        name=name or f"campaign-{campaign.slug}",
        source=PreferenceBenchmark.Source.CAMPAIGN,
        dataset=campaign.dataset,
        pairs=pairs,
        tie_policy=tie_policy,
        campaign=campaign,
        notes=f"Frozen from campaign {campaign}; majority vote, tie policy {tie_policy}.",
        report=report,
    )
    result.report = report
    return result


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


def model_scores_request(
    *, model: ModelEntry, benchmarks: Iterable[PreferenceBenchmark] | None = None, force: bool = False
) -> list[ModelScore]:
    """Queue scoring of ``model`` on ``benchmarks`` (default: every active benchmark); dispatched on commit.

    A finished score is left alone unless ``force``; a queued or running one is not queued twice.
    """
    if benchmarks is None:
        benchmarks = PreferenceBenchmark.objects.filter(is_active=True)
    task = dispatch.SCORE_MODEL
    if model.family == ModelEntry.Family.SCORES:  # the authors' scores: read from their files, nothing to run
        from hpbench.leaderboard.score_submissions import benchmarks_with_files

        benchmarks, task = benchmarks_with_files(model=model, benchmarks=benchmarks), dispatch.SCOREFILE_SCORE
    queued: list[ModelScore] = []
    with transaction.atomic():
        for benchmark in benchmarks:
            score, created = ModelScore.objects.get_or_create(model=model, benchmark=benchmark)
            if not created:
                if score.status in (ModelScore.Status.QUEUED, ModelScore.Status.RUNNING):
                    continue
                if score.status == ModelScore.Status.FINISHED and not force:
                    continue
                ModelScore.objects.filter(pk=score.pk).update(
                    status=ModelScore.Status.QUEUED, progress=0.0, error="", started_at=None,
                    claimed_by="", heartbeat_at=None, restarts=0,
                )
                score.refresh_from_db()
            queued.append(score)
            dispatch.task_send_on_commit(task, score.pk)
    return queued


def preference_figures(
    *, set1: Sequence[float], set2: Sequence[float], human: Sequence[int], rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Preference ratio (QuRe Eq. 9), agreement (symmetric, model tie = 0.5, human ties excluded) and their
    95% bootstrap intervals over pairs, from per-pair set scores and human verdicts (1, 2, 0 = tie)."""
    from hpbench.metrics import preference

    summary = preference.preference_summary(set1, set2, human, rounds=rounds, seed=seed)
    ratio, agree = summary["preference_ratio"], summary["agreement"]
    return {
        "preference_ratio": ratio["value"],
        "preference_ratio_low": ratio["lower"],
        "preference_ratio_high": ratio["upper"],
        "agreement": agree["value"],
        "agreement_low": agree["lower"],
        "agreement_high": agree["upper"],
        "n_pairs": summary["n"],
        "n_human_ties": agree["human_ties"],
        "n_model_ties": agree["model_ties"],
    }


def category_figures(
    *, set1: Sequence[float], set2: Sequence[float], human: Sequence[int], categories: Sequence[str],
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict[str, Any]]:
    """:func:`preference_figures` on each category's pairs (the category of a pair's reference image:
    FashionIQ's dress, shirt, toptee): ``{category: {"agreement", "agreement_low", "agreement_high",
    "preference_ratio", "n_pairs"}}``. Pairs without a category are left out; ``{}`` when fewer than two
    categories have pairs (one category's figures are the overall ones)."""
    groups: dict[str, list[int]] = {}
    for position, category in enumerate(categories):
        if category:
            groups.setdefault(category, []).append(position)
    if len(groups) < 2:
        return {}
    s1, s2, h = np.asarray(set1, dtype=float), np.asarray(set2, dtype=float), np.asarray(human)
    out: dict[str, dict[str, Any]] = {}
    for category, positions in sorted(groups.items()):
        figures = preference_figures(set1=s1[positions], set2=s2[positions], human=h[positions], rounds=rounds,
                                     seed=seed)
        out[category] = {key: figures[key] for key in
                         ("agreement", "agreement_low", "agreement_high", "preference_ratio", "n_pairs")}
    return out


def weighted_agreement_figures(
    *, set1: Sequence[float], set2: Sequence[float], human: Sequence[int], weights: Sequence[float],
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Agreement weighted by each pair's selection weight (1/π, Hajek) and its 95% bootstrap interval over pairs.

    For benchmarks built with informative pair selection; equals the plain agreement when every weight is 1.
    """
    from hpbench.metrics import preference

    s1, s2 = np.asarray(set1, dtype=np.float64), np.asarray(set2, dtype=np.float64)
    h, w = np.asarray(human), np.asarray(weights, dtype=np.float64)
    value = preference.agreement_value(s1, s2, h, weights=w)
    low, high = preference.bootstrap_ci(
        lambda a, b, c, d: preference.agreement_value(a, b, c, weights=d), s1, s2, h, w, rounds=rounds, seed=seed
    )
    def finite(x: float) -> float | None:
        return None if x != x else float(x)  # nan: no pair with a human preference

    return {"agreement": finite(value), "agreement_low": finite(low), "agreement_high": finite(high)}


def model_score_store(
    *, score_id: int, set1: Sequence[float], set2: Sequence[float], timings: dict | None = None
) -> ModelScore:
    """Compute and store a model's figures, overall and per category (:func:`category_figures`), from its per-pair
    set scores (benchmark order); marks it finished.

    Raises ``ValueError`` when the number of scores differs from the benchmark's pairs.
    """
    score = ModelScore.objects.select_related("benchmark").get(pk=score_id)
    rows = list(
        score.benchmark.pairs.order_by("position").values_list("preference", "reference__category", "selection_weight")
    )
    human = [preference for preference, _, _ in rows]
    if len(human) != len(set1):
        raise ValueError(f"score {score_id}: {len(set1)} set scores for {len(human)} pairs")
    figures = preference_figures(set1=set1, set2=set2, human=human)
    weights = [w for _, _, w in rows]
    if any(w != 1.0 for w in weights):
        figures.update(weighted_agreement_figures(set1=set1, set2=set2, human=human, weights=weights))
    by_category = category_figures(set1=set1, set2=set2, human=human, categories=[c for _, c, _ in rows])
    ModelScore.objects.filter(pk=score_id).update(
        **figures,
        by_category=by_category,
        status=ModelScore.Status.FINISHED,
        progress=1.0,
        error="",
        timings=timings or {},
        computed_at=timezone.now(),
    )
    score.refresh_from_db()
    return score


def model_score_claim(*, score_id: int) -> bool:
    """Move a queued score to running; ``False`` when another worker has it or it was cancelled."""
    return (
        ModelScore.objects.filter(pk=score_id, status=ModelScore.Status.QUEUED).update(
            status=ModelScore.Status.RUNNING, progress=0.0, started_at=timezone.now()
        )
        == 1
    )


def model_score_fail(*, score_id: int, error: str) -> None:
    ModelScore.objects.filter(pk=score_id).exclude(status=ModelScore.Status.CANCELLED).update(
        status=ModelScore.Status.FAILED, error=error[:20000], computed_at=timezone.now()
    )


def model_score_progress(*, score_id: int, progress: float) -> bool:
    """Record progress; ``False`` when the score is no longer running (cancelled): the worker should stop."""
    return (
        ModelScore.objects.filter(pk=score_id, status=ModelScore.Status.RUNNING).update(
            progress=max(0.0, min(1.0, progress))
        )
        == 1
    )


# --------------------------------------------------------------------------------------------
# Submissions
# --------------------------------------------------------------------------------------------


class SubmissionError(ValueError):
    """A submission is refused; the message says why (and which field)."""


class QuotaExceeded(SubmissionError):
    pass


def submissions_per_day() -> int:
    return int(getattr(settings, "HPBENCH_SUBMISSIONS_PER_DAY", 5))


def _check_upload(file: UploadedFile) -> None:
    from hpbench.leaderboard.uploads import UploadError, check_checkpoint_upload

    try:
        check_checkpoint_upload(file)
    except UploadError as exc:
        raise SubmissionError(str(exc)) from None


@transaction.atomic
def submission_create(
    *,
    owner,
    family: str,
    file: UploadedFile,
    variant: str = "",
    config: dict | None = None,
    description: str = "",
    link: str = "",
) -> Submission:
    """Register a researcher's checkpoint as a private model and queue its evaluation.

    ``config`` holds the family's bounded options and ``base_model`` (``hpbench.catalog.family_config``): no
    server paths, no limits. ``link`` must be an http(s) URL.
    Raises ``SubmissionError`` for an unknown family/variant, a refused config key or link, or a bad file and
    ``QuotaExceeded`` when the owner already has ``HPBENCH_SUBMISSIONS_PER_DAY`` submissions in the last
    24 hours (every submission counts, failed and cancelled ones too).
    """
    from hpbench.catalog.family_config import ConfigError, researcher_config_clean
    from hpbench.catalog.links import link_problem
    from models_zoo import FAMILIES, VARIANTS  # cheap: no torch at import

    if family not in FAMILIES:
        raise SubmissionError(f"family {family!r}: unknown; known: {', '.join(sorted(FAMILIES))}")
    if variant and variant not in VARIANTS[family]:
        raise SubmissionError(f"variant {variant!r}: unknown for {family}; known: {', '.join(VARIANTS[family])}")
    # Text PostgreSQL cannot store (NUL, lone surrogates) would be a 500 at the INSERT: refuse it here.
    for name, value in (("description", description), ("link", link)):
        if isinstance(value, str) and (problem := text_problem(value)):
            raise SubmissionError(f"{name}: {problem}")
    if config and isinstance(config, dict) and (problem := json_problem(config)):
        raise SubmissionError(f"config: {problem}")
    try:
        config = researcher_config_clean(family=family, config=config)
    except ConfigError as exc:
        raise SubmissionError(str(exc)) from None
    if link_problem(link):
        raise SubmissionError(f"link: {link_problem(link)}")
    _check_upload(file)
    # Lock the owner's row so two concurrent uploads cannot both pass the quota.
    get_user_model().objects.select_for_update().get(pk=owner.pk)
    used = submissions_counted_today(owner=owner)
    limit = submissions_per_day()
    if used >= limit:
        raise QuotaExceeded(f"quota: {used} of {limit} submissions used in the last 24 hours")
    entry = ModelEntry(
        name=f"sub-{uuid.uuid4().hex[:12]}",
        family=family,
        variant=variant,
        config=config or {},
        owner=owner,
        is_public=False,
        description=description,
        link=link,
    )
    # A folder of its own: loaders read companion files "beside the checkpoint" (clip_vit_L.pth, vocab.txt,
    # clip4cir.json), which must never be another researcher's upload.
    entry.checkpoint_file.save(f"{entry.name}/{Path(file.name).name}", file, save=False)
    entry.save()
    submission = Submission.objects.create(
        owner=owner, model=entry, family=family, variant=variant, config=config or {},
        description=description, link=link,
    )
    return submission_enqueue(submission=submission)


def submissions_counted_today(*, owner) -> int:
    """The owner's submissions in the last 24 hours, whatever became of them (failed and cancelled count)."""
    since = timezone.now() - timedelta(days=1)
    return Submission.objects.filter(owner=owner, created_at__gte=since).count()


def submission_datasets() -> list[tuple[Dataset, str]]:
    """Where submissions run retrieval: ``HPBENCH_SUBMISSION_DATASETS`` ("name" or "name:split" items),
    else the datasets of the active benchmarks, on split "val" where it has queries (else the first split)."""
    configured = getattr(settings, "HPBENCH_SUBMISSION_DATASETS", None)
    out: list[tuple[Dataset, str]] = []
    if configured:
        for item in configured:
            name, _, split = str(item).partition(":")
            out.append((Dataset.objects.get(name=name), split or "val"))
        return out
    for dataset in Dataset.objects.filter(preference_benchmarks__is_active=True).distinct().order_by("id"):
        splits = list(dataset.queries.values_list("split", flat=True).distinct())
        if splits:
            out.append((dataset, "val" if "val" in splits else sorted(splits)[0]))
    return out


def _log(submission: Submission, line: str) -> str:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    return (submission.log + "\n" if submission.log else "") + f"[{stamp}] {line}"


@transaction.atomic
def submission_enqueue(*, submission: Submission, force: bool = False) -> Submission:
    """Queue retrieval on the configured datasets and scoring on every active benchmark."""
    from hpbench.catalog.services import retrieval_run_create

    model = submission.model
    if model is None:
        raise SubmissionError(f"submission {submission.pk}: has no model")
    lines = []
    if model.family == ModelEntry.Family.SCORES:  # the authors' scores: their files are scored, nothing runs
        from hpbench.leaderboard.score_submissions import score_files_enqueue

        lines = score_files_enqueue(model=model, force=force)
    else:
        for dataset, split in submission_datasets():
            try:
                run = retrieval_run_create(model=model, dataset=dataset, split=split)
                lines.append(f"queued retrieval run {run.pk} on {dataset.name}/{split}")
            except ValueError as exc:
                lines.append(f"retrieval on {dataset.name}/{split} skipped: {exc}")
        scores = model_scores_request(model=model, force=force)
        lines.append(f"queued scoring on {len(scores)} benchmark(s)")
    submission.log = _log(submission, "; ".join(lines))
    submission.status = Submission.Status.QUEUED
    submission.progress = 0.0
    submission.finished_at = None
    submission.save(update_fields=["log", "status", "progress", "finished_at"])
    return submission


def _stuck_limit() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "CELERY_TASK_HARD_TIME_LIMIT", 6 * 3600)) + 60)


def submission_refresh(*, submission: Submission) -> Submission:
    """Bring the submission's status and progress up to date with its retrieval runs and scores.

    Jobs running longer than the hard time limit are failed as stuck. Errors go first in the log.
    """
    if submission.model_id is None or submission.status in Submission.DONE:
        return submission
    cutoff = timezone.now() - _stuck_limit()
    message = "timed out: no result within the task time limit"
    ModelScore.objects.filter(model_id=submission.model_id, status=ModelScore.Status.RUNNING,
                              started_at__lt=cutoff).update(status=ModelScore.Status.FAILED, error=message)
    RetrievalRun.objects.filter(model_id=submission.model_id, status=RetrievalRun.Status.RUNNING,
                                started_at__lt=cutoff).update(status=RetrievalRun.Status.FAILED, error=message)
    children = [
        (f"retrieval run {r.pk} ({r.dataset.name}/{r.split})", r.status, r.progress, r.error)
        for r in RetrievalRun.objects.filter(model_id=submission.model_id, created_at__gte=submission.created_at)
        .select_related("dataset")
    ] + [
        (f"score on {s.benchmark.label}", s.status, s.progress, s.error)
        for s in ModelScore.objects.filter(model_id=submission.model_id).select_related("benchmark")
    ]
    if not children:
        return submission
    statuses = [c[1] for c in children]
    progress = float(np.mean([1.0 if s == "finished" else p for _, s, p, _ in children]))
    update: dict[str, Any] = {"progress": progress}
    failed = [c for c in children if c[1] in ("failed", "cancelled")]
    if failed and all(s in ("finished", "failed", "cancelled") for s in statuses):
        errors = "\n".join(f"ERROR {what}: {err or status}" for what, status, _, err in failed)
        update.update(status=Submission.Status.FAILED, finished_at=timezone.now(),
                      log=errors + "\n" + submission.log)
    elif all(s == "finished" for s in statuses):
        update.update(status=Submission.Status.FINISHED, finished_at=timezone.now(), progress=1.0,
                      log=_log(submission, "all runs finished"))
    elif any(s != "queued" for s in statuses):
        update["status"] = Submission.Status.RUNNING
    # Conditional: a concurrent cancel wins.
    Submission.objects.filter(pk=submission.pk).exclude(status__in=Submission.DONE).update(**update)
    submission.refresh_from_db()
    return submission


@transaction.atomic
def submission_cancel(*, submission: Submission) -> Submission:
    """Cancel a submission that has not ended, with its queued or running jobs. Raises ``SubmissionError``."""
    changed = Submission.objects.filter(pk=submission.pk).exclude(status__in=Submission.DONE).update(
        status=Submission.Status.CANCELLED, finished_at=timezone.now(), log=_log(submission, "cancelled by owner")
    )
    if not changed:
        raise SubmissionError(f"submission {submission.pk}: already {submission.status}, cannot cancel")
    active = ("queued", "running")
    ModelScore.objects.filter(model_id=submission.model_id, status__in=active).update(
        status=ModelScore.Status.CANCELLED
    )
    RetrievalRun.objects.filter(model_id=submission.model_id, status__in=active).update(
        status=RetrievalRun.Status.CANCELLED, finished_at=timezone.now()
    )
    submission.refresh_from_db()
    return submission


@transaction.atomic
def submission_publish(*, submission: Submission) -> Submission:
    """Make the submission and its model's scores visible to everyone."""
    Submission.objects.filter(pk=submission.pk).update(is_public=True)
    if submission.model_id:
        ModelEntry.objects.filter(pk=submission.model_id).update(is_public=True)
    submission.refresh_from_db()
    return submission


def submission_rerun(*, submission: Submission) -> Submission:
    """Admin: evaluate again from scratch (scores recomputed even when finished)."""
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.SUBMITTED)
    submission.refresh_from_db()
    submission.log = _log(submission, "re-run requested by staff")
    return submission_enqueue(submission=submission, force=True)
