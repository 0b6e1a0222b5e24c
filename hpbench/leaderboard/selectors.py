"""Reads for the leaderboard, with the caller's rights applied in one place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import F, QuerySet

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.catalog.selectors import model_entries_visible_to
from hpbench.leaderboard.models import BenchmarkPair, ModelScore, PreferenceBenchmark, ReportedScore, Submission

#: ``?sort=`` keys of the leaderboard (a leading "-" sorts descending), and the row field each sorts on.
SORT_KEYS = {
    "rank": "rank",
    "model": "model",
    "heldout": "heldout_agreement",
    "agreement": "agreement",
    "loo": "loo_agreement",
    "preference_ratio": "preference_ratio",
    "recall": "recall",
    "votes": "arena_votes",
    "submitted": "submitted",
}
DEFAULT_SORT = "-heldout"


class NotFound(Exception):
    """The object does not exist or the caller may not see it (the two are never told apart)."""


# --- submissions ---------------------------------------------------------------------------


def submissions_for_user(user) -> QuerySet[Submission]:
    """The caller's own submissions (staff: all), newest first."""
    if not getattr(user, "is_authenticated", False):
        return Submission.objects.none()
    qs = Submission.objects.select_related("model", "owner")
    return qs if user.is_staff else qs.filter(owner=user)


def submission_get_for_user(user, submission_id: int, *, write: bool = False) -> Submission:
    """The submission if the caller may see it (owner, staff, or anyone once published; ``write`` requires
    owner or staff). Raises :class:`NotFound` otherwise, so outsiders cannot tell private from missing."""
    try:
        submission = Submission.objects.select_related("model", "owner").get(pk=submission_id)
    except (Submission.DoesNotExist, ValueError, TypeError):
        raise NotFound(submission_id) from None
    is_owner = getattr(user, "is_authenticated", False) and (user.is_staff or submission.owner_id == user.pk)
    if is_owner or (not write and submission.is_public and not (submission.model and submission.model.is_hidden)):
        return submission
    raise NotFound(submission_id)


def submission_scores(submission: Submission) -> list[ModelScore]:
    if submission.model_id is None:
        return []
    return list(ModelScore.objects.filter(model_id=submission.model_id).select_related("benchmark"))


def submission_runs(submission: Submission) -> list[RetrievalRun]:
    if submission.model_id is None:
        return []
    return list(RetrievalRun.objects.filter(model_id=submission.model_id).select_related("dataset"))


def submission_score_files(submission: Submission) -> list[dict]:
    """The score files of a score-file submission (name, target, rows, sha256); empty for a checkpoint."""
    from pathlib import PurePath

    from hpbench.leaderboard.models import ScoreFile

    if submission.model_id is None:
        return []
    files = ScoreFile.objects.filter(model_id=submission.model_id).select_related("benchmark", "dataset")
    return [{"name": PurePath(f.file.name or "").name, "benchmark": f.benchmark, "dataset": f.dataset, "split": f.split,
             "metric": f.metric, "rows": f.rows, "sha256": f.sha256} for f in files]


def submissions_headline_scores(submissions: Sequence[Submission]) -> dict[int, list[ModelScore]]:
    """Per model of these submissions, its finished scores on active benchmarks (one query)."""
    ids = [s.model_id for s in submissions if s.model_id is not None]
    out: dict[int, list[ModelScore]] = {}
    for score in (ModelScore.objects.filter(model_id__in=ids, status=ModelScore.Status.FINISHED,
                                            benchmark__is_active=True)
                  .select_related("benchmark").order_by("benchmark__name")):
        out.setdefault(score.model_id, []).append(score)
    return out


# --- models --------------------------------------------------------------------------------


def model_page_url(model: ModelEntry) -> str:
    return f"/models/{model.name}/"


def model_page(*, model: ModelEntry) -> dict[str, Any]:
    """What a model's page shows (the caller may see the model: ``model_entries_visible_to``): the model, its
    submission (description, owner-given links), its finished scores per active benchmark, its finished
    retrieval runs, and for the authors' scores the files they uploaded."""
    submission = Submission.objects.filter(model=model).first()
    scores = list(ModelScore.objects.filter(model=model, status=ModelScore.Status.FINISHED)
                  .select_related("benchmark").order_by("benchmark__name", "-benchmark__version"))
    runs = list(RetrievalRun.objects.filter(model=model, status=RetrievalRun.Status.FINISHED)
                .select_related("dataset").order_by("dataset__name", "split"))
    return {
        "model": model,
        "submission": submission,
        "scores": scores,
        "runs": runs,
        "authors_scores": model.family == ModelEntry.Family.SCORES,
        "score_files": submission_score_files(submission) if submission is not None else [],
    }


# --- benchmarks ----------------------------------------------------------------------------


def benchmarks_active() -> QuerySet[PreferenceBenchmark]:
    return PreferenceBenchmark.objects.filter(is_active=True).select_related("dataset").order_by("name")


def request_splits() -> list[tuple[str, str]]:
    """``(dataset name, split)`` of every split with queries: the request files a score file can answer."""
    from hpbench.catalog.models import Query

    return list(Query.objects.values_list("dataset__name", "split").distinct().order_by("dataset__name", "split"))


#: The largest version a benchmark can have (a PostgreSQL integer).
MAX_VERSION = 2**31 - 1


def benchmark_get(name: str, version: int | str | None = None) -> PreferenceBenchmark:
    """Benchmark ``name`` at ``version`` (default: the active one, else the newest). Raises NotFound."""
    qs = PreferenceBenchmark.objects.filter(name=name).select_related("dataset")
    try:
        if version not in (None, ""):
            number = int(version)
            if not 1 <= number <= MAX_VERSION:  # past the column's range PostgreSQL refuses the query (a 500)
                raise ValueError(version)
            return qs.get(version=number)
    except (PreferenceBenchmark.DoesNotExist, ValueError):
        raise NotFound(name) from None
    benchmark = qs.order_by("-is_active", "-version").first()
    if benchmark is None:
        raise NotFound(name)
    return benchmark


def recall_summary(metrics: dict, dataset: Dataset) -> float | None:
    """The retrieval figure shown beside preference scores: FashionIQ (and demo) = mean of R@10 and R@50 over
    categories; CIRR = (R@5 + Rsubset@1) / 2. Reads ``avg`` when the run stored it."""
    if not metrics:
        return None
    if isinstance(metrics.get("avg"), (int, float)):
        return float(metrics["avg"])
    if dataset.protocol == "cirr":
        if "R@5" in metrics and "Rsubset@1" in metrics:
            return (float(metrics["R@5"]) + float(metrics["Rsubset@1"])) / 2
        return None
    mean = metrics.get("mean") or metrics
    if "R@10" in mean and "R@50" in mean:
        return (float(mean["R@10"]) + float(mean["R@50"])) / 2
    return None


def recall_label(dataset: Dataset, split: str | None = None) -> str:
    label = "(R@5 + Rsubset@1) / 2" if dataset.protocol == "cirr" else "Recall@10/@50 avg"
    return f"{label} ({split})" if split else label


def recall_split(dataset: Dataset) -> str:
    """The split whose Recall@K the leaderboard shows for ``dataset``: the one submissions run retrieval on
    (``HPBENCH_SUBMISSION_DATASETS``'s ``name:split`` for it, else "val" when it has val queries, else its first
    split with queries, else "val")."""
    from django.conf import settings

    for item in getattr(settings, "HPBENCH_SUBMISSION_DATASETS", None) or []:
        name, _, split = str(item).partition(":")
        if name == dataset.name:
            return split or "val"
    splits = sorted(set(dataset.queries.values_list("split", flat=True)))
    return "val" if "val" in splits or not splits else splits[0]


def _latest_runs(model_ids: list[int], dataset: Dataset, split: str) -> dict[int, RetrievalRun]:
    """Each model's latest finished run on ``dataset``/``split`` (runs on other splits are not comparable)."""
    latest: dict[int, RetrievalRun] = {}
    runs = RetrievalRun.objects.filter(
        model_id__in=model_ids, dataset=dataset, split=split, status=RetrievalRun.Status.FINISHED
    ).order_by("model_id", "-finished_at", "-id")
    for run in runs.only("id", "model_id", "metrics", "finished_at"):
        latest.setdefault(run.model_id, run)
    return latest


def leaderboard(*, benchmark: PreferenceBenchmark, user, sort: str = DEFAULT_SORT) -> dict[str, Any]:
    """Rows of finished scores of the models the caller may see (not the benchmark's campaign's pool of set makers),
    with recall, arena votes and ranks.

    Rank and the difference to the row above: :func:`paired_ranks` (from paired tests on the pairs two models
    share, not from overlapping intervals). Recall: the latest finished run on :func:`recall_split`. Unknown
    ``sort`` keys fall back to the default.
    """
    visible = model_entries_visible_to(user)
    finished = ModelScore.objects.filter(benchmark=benchmark, status=ModelScore.Status.FINISHED, model__in=visible)
    if benchmark.campaign_id is not None:  # its campaign's pool of set makers is not on its board, even if scored
        pool = ModelEntry.objects.filter(pool_campaigns=benchmark.campaign_id).exclude(campaigns=benchmark.campaign_id)
        finished = finished.exclude(model__in=pool)
    scores = list(finished.select_related("model", "model__submission").defer("pair_choices"))
    model_ids = [s.model_id for s in scores]
    split = recall_split(benchmark.dataset)
    runs = _latest_runs(model_ids, benchmark.dataset, split)
    paired = paired_ranks(benchmark=benchmark, scores=scores)
    arena = {row["model_id"]: row for row in arena_for_benchmark(benchmark=benchmark)}
    reported = {
        r.model_id: {"source": r.source, "label": r.label, "preference_ratio": r.preference_ratio / 100}
        for r in ReportedScore.objects.filter(benchmark_name=benchmark.name, model_id__in=model_ids)
    }
    rows = []
    for s in scores:
        submission = getattr(s.model, "submission", None)
        run = runs.get(s.model_id)
        rows.append(
            {
                "model_id": s.model_id,
                "model": s.model.name,
                "family": s.model.family,
                "variant": s.model.variant,
                "is_baseline": s.model.is_baseline,
                "is_public": s.model.is_public,
                "link": s.model.link,
                "page": model_page_url(s.model),
                "paper_url": s.model.paper_url,
                "code_url": s.model.code_url,
                "agreement": s.agreement,
                "agreement_low": s.agreement_low,
                "agreement_high": s.agreement_high,
                "preference_ratio": s.preference_ratio,
                "preference_ratio_low": s.preference_ratio_low,
                "preference_ratio_high": s.preference_ratio_high,
                "n_pairs": s.n_pairs,
                "n_human_ties": s.n_human_ties,
                "n_model_ties": s.n_model_ties,
                # The headline: agreement on the pairs neither of whose sets the model made ("–" until rescored).
                "heldout_agreement": s.heldout_agreement,
                "heldout_agreement_low": s.heldout_agreement_low,
                "heldout_agreement_high": s.heldout_agreement_high,
                "heldout_n_pairs": s.heldout_n_pairs,
                "loo_agreement": s.loo_agreement,
                "loo_agreement_low": s.loo_agreement_low,
                "loo_agreement_high": s.loo_agreement_high,
                "by_category": s.by_category or {},
                "recall": recall_summary(run.metrics, benchmark.dataset) if run else None,
                "arena_rating": arena.get(s.model_id, {}).get("rating"),
                "arena_votes": arena.get(s.model_id, {}).get("votes", 0),
                # Where the scores come from: the authors' score files, or the platform running the model.
                "source": "authors" if s.model.family == ModelEntry.Family.SCORES else "platform",
                # A score file on a benchmark whose verdicts are published could simply encode them.
                "labels_public": benchmark.labels_public and s.model.family == ModelEntry.Family.SCORES,
                "reported": reported.get(s.model_id),
                "submitted": (submission.created_at if submission else s.model.created_at),
                "computed_at": s.computed_at,
                **paired["rows"].get(s.model_id, _UNRANKED),
            }
        )
    names = {s.model_id: s.model.name for s in scores}  # names at read time: the cached figures keep ids
    for row in rows:
        row["above_model"] = names.get(row.pop("above_model_id", None))
    key = sort if sort.lstrip("-") in SORT_KEYS else DEFAULT_SORT
    field, descending = SORT_KEYS[key.lstrip("-")], key.startswith("-")
    present = [r for r in rows if r[field] is not None]
    missing = [r for r in rows if r[field] is None]
    present.sort(key=lambda r: r["model"])
    present.sort(key=lambda r: r[field], reverse=descending)
    return {
        "benchmark": {
            "name": benchmark.name,
            "version": benchmark.version,
            "label": benchmark.label,
            "source": benchmark.source,
            "dataset": benchmark.dataset.name,
            "tie_policy": benchmark.tie_policy,
            "n_pairs": benchmark.n_pairs,
            "frozen_at": benchmark.frozen_at,
            "notes": benchmark.notes,
            "preference_ratio_chance": benchmark.preference_ratio_chance,
        },
        "human_ceiling": {
            # In the models' units: each vote against the majority of the other votes on its pair (the rows'
            # loo_agreement is each model against the same majorities).
            "leave_one_out": benchmark.ceiling_loo,
            "leave_one_out_low": benchmark.ceiling_loo_low,
            "leave_one_out_high": benchmark.ceiling_loo_high,
            "leave_one_out_pairs": benchmark.ceiling_loo_pairs,
            "pairwise_agreement": benchmark.human_agreement,
            "krippendorff_alpha": benchmark.human_alpha,
            "votes_per_pair": benchmark.votes_per_pair,
        },
        "recall_label": recall_label(benchmark.dataset, split),
        "recall_split": split,
        "ranking": paired["ranking"],
        # The categories some row has figures for (FashionIQ: dress, shirt, toptee); [] when none does.
        "categories": sorted({c for row in rows for c in row["by_category"]}),
        "sort": key,
        "higher_is_better": ["heldout_agreement", "agreement", "loo_agreement", "preference_ratio", "recall",
                             "arena_rating"],
        "rows": present + missing,
    }


# --- ranks from paired comparisons (cached) ------------------------------------------------


PAIRED_CACHE_SECONDS = 24 * 3600
#: Family-wise error rate of the rank's tests (Holm over every pair of ranked models).
RANK_ALPHA = 0.05
_UNRANKED = {"rank": None, "above_model_id": None, "above_difference": None, "above_difference_low": None,
             "above_difference_high": None, "above_p": None, "above_p_holm": None, "above_pairs": None}


def _benchmark_pair_arrays(benchmark: PreferenceBenchmark) -> dict[str, Any]:
    """The pairs' verdicts, makers (0 = none) and selection weights in position order, as numpy arrays."""
    import numpy as np

    rows = list(benchmark.pairs.order_by("position").values_list(
        "preference", "set1_model_id", "set2_model_id", "selection_weight", "set1_makers", "set2_makers"))
    # Every maker of each set (the comparison's model and any model with the identical top-k), padded with 0.
    makers = [list(r[4] or ([r[1]] if r[1] else [])) + list(r[5] or ([r[2]] if r[2] else [])) for r in rows]
    width = max((len(m) for m in makers), default=0)
    return {
        "human": np.array([r[0] for r in rows], dtype=np.int8),
        "makers": np.array([m + [0] * (width - len(m)) for m in makers], dtype=np.int64).reshape(len(rows), width),
        "weights": np.array([r[3] for r in rows], dtype=np.float64),
    }


def paired_ranks(*, benchmark: PreferenceBenchmark, scores: Sequence[ModelScore]) -> dict[str, Any]:
    """Ranks of the models of ``scores`` (finished, on ``benchmark``) from paired comparisons, with each one's
    difference to the model just above it (by held-out agreement, best first).

    Two models are compared on the pairs held out for both (neither set made by either model; every pair when
    the benchmark records no makers) that have a human preference: exact McNemar test (weighted benchmarks: Wald
    test of the weighted difference), Holm correction over every pair of ranked models at :data:`RANK_ALPHA`;
    rank = 1 + the number of models significantly better (``hpbench.metrics.paired``). ``above_difference`` is
    the model above's agreement minus this one's on their shared pairs, with its 95% interval (paired bootstrap,
    1,000 rounds; weighted: Wald), ``above_p`` / ``above_p_holm`` the test's raw and corrected p-values.
    Scores without stored choices are left unranked. Returns ``{"rows": {model_id: figures (the model above
    by id, ``above_model_id``: names are read fresh)}, "ranking": {the
    method, in words and numbers}}``; cached per benchmark content and set of scores.
    """
    import hashlib

    from django.core.cache import cache

    state = ",".join(f"{s.pk}:{s.computed_at.isoformat() if s.computed_at else ''}"
                     for s in sorted(scores, key=lambda s: s.pk))
    key = (f"hpbench:paired:{benchmark.pk}:{benchmark.fingerprint}:"
           f"{hashlib.sha256(state.encode()).hexdigest()[:32]}")
    figures = cache.get(key)
    if figures is None:
        figures = _paired_ranks_compute(benchmark=benchmark, scores=scores)
        cache.set(key, figures, PAIRED_CACHE_SECONDS)
    return figures


def _headline(score: ModelScore) -> float:
    value = score.heldout_agreement if score.heldout_agreement is not None else score.agreement
    return -1.0 if value is None else value


def _paired_ranks_compute(*, benchmark: PreferenceBenchmark, scores: Sequence[ModelScore]) -> dict[str, Any]:
    import numpy as np

    from hpbench.metrics.paired import difference_interval, paired_comparisons

    pairs = _benchmark_pair_arrays(benchmark)
    n_pairs = pairs["human"].size
    stored = {pk: bytes(raw) for pk, raw in ModelScore.objects.filter(pk__in=[s.pk for s in scores])
              .values_list("pk", "pair_choices") if raw is not None}
    ranked = [s for s in scores if len(stored.get(s.pk, b"")) == n_pairs]
    weighted = bool(n_pairs) and bool((pairs["weights"] != 1.0).any())
    ranking = {
        "method": "paired: rank = 1 + models significantly better on the pairs held out for both",
        "test": "Wald test of the weighted paired difference" if weighted else "exact McNemar test",
        "correction": "Holm", "alpha": RANK_ALPHA, "models_ranked": len(ranked),
        "comparisons": len(ranked) * (len(ranked) - 1) // 2,
    }
    if not ranked:
        return {"rows": {}, "ranking": ranking}
    # The row above is the next by the headline (held-out agreement; all pairs for scores stored before it).
    ranked.sort(key=lambda s: (-_headline(s), s.model.name, s.pk))
    choices = np.stack([np.frombuffer(stored[s.pk], dtype=np.int8) for s in ranked])
    # A model is judged on the pairs where it made neither set (held out); two models on those of both.
    usable = np.ones((len(ranked), n_pairs), dtype=bool)
    for k, s in enumerate(ranked):
        usable[k] = ~(pairs["makers"] == s.model_id).any(axis=1)
    result = paired_comparisons(choices, pairs["human"], usable=usable,
                                weights=pairs["weights"] if weighted else None, alpha=RANK_ALPHA)

    def number(x: float) -> float | None:
        return None if not np.isfinite(x) else float(x)

    rows: dict[int, dict[str, Any]] = {}
    for k, s in enumerate(ranked):
        row: dict[str, Any] = {**_UNRANKED, "rank": int(result.rank[k])}
        if k > 0:
            low, high = difference_interval(result, k - 1, k)
            row.update({
                "above_model_id": ranked[k - 1].model_id,
                "above_difference": number(result.difference[k - 1, k]),
                "above_difference_low": number(low), "above_difference_high": number(high),
                "above_p": float(result.p_value[k - 1, k]), "above_p_holm": float(result.p_holm[k - 1, k]),
                "above_pairs": int(result.n[k - 1, k]),
            })
        rows[s.model_id] = row
    return {"rows": rows, "ranking": ranking}


# --- arena ratings (reads, cached) ---------------------------------------------------------


ARENA_CACHE_SECONDS = 3600


def arena_ratings_for_games(games: Sequence[tuple], *, rounds: int = 1000) -> list[dict]:
    """Bradley-Terry rows (``hpbench.metrics.arena``) with ``model_id`` (int) in place of names, best first.

    Games are ``(model A, model B, outcome, comparison)``: the bootstrap resamples comparisons (all votes cast on
    one together), since votes on one comparison are correlated. Games without a comparison ``(A, B, outcome)``
    count as independent votes.
    """
    from hpbench.metrics import arena

    if not games:
        return []
    columns = list(zip(*games, strict=True))
    a, b, outcome = columns[:3]
    clusters = list(columns[3]) if len(columns) > 3 else None
    rows = arena.arena_ratings([str(x) for x in a], [str(x) for x in b], list(outcome), clusters=clusters,
                               rounds=rounds)
    return [{**{k: v for k, v in row.items() if k != "model"}, "model_id": int(row["model"])} for row in rows]


def arena_for_benchmark(*, benchmark: PreferenceBenchmark) -> list[dict]:
    """Arena ratings from a benchmark's pairs whose sets came from different models; cached (benchmarks
    are frozen, so the cache key is the benchmark's content fingerprint)."""
    from django.core.cache import cache

    key = f"hpbench:arena:comparisons:benchmark:{benchmark.pk}:{benchmark.fingerprint}"
    rows = cache.get(key)
    if rows is None:
        pairs = benchmark.pairs.exclude(set1_model=None).exclude(set2_model=None).only(
            "position", "set1_model_id", "set2_model_id", "votes", "preference"
        )
        rows = arena_ratings_for_games(arena_games_from_pairs(pairs))
        cache.set(key, rows, ARENA_CACHE_SECONDS)
    return rows


def arena_for_campaign(*, campaign: Any) -> list[dict]:
    """Live arena ratings from a campaign's counted votes (gold, excluded and flagged annotators' votes left
    out) on comparisons of two different models; cached until a vote is added or excluded."""
    from django.core.cache import cache
    from django.db.models import Count, Max

    from annotate.models import Vote

    votes = Vote.objects.counted().filter(
        comparison__campaign=campaign, comparison__is_gold=False,
        comparison__set_a_model__isnull=False, comparison__set_b_model__isnull=False,
    ).exclude(comparison__set_a_model=F("comparison__set_b_model"))
    state = votes.aggregate(n=Count("id"), last=Max("id"))
    key = f"hpbench:arena:comparisons:campaign:{campaign.pk}:{state['n']}:{state['last']}"
    rows = cache.get(key)
    if rows is None:
        games = list(votes.values_list("comparison__set_a_model_id", "comparison__set_b_model_id", "choice",
                                       "comparison_id"))
        rows = arena_ratings_for_games(games)
        cache.set(key, rows, ARENA_CACHE_SECONDS)
    return rows


def arena_games_from_pairs(pairs: Iterable[BenchmarkPair]) -> list[tuple[int, int, str, int]]:
    """Games (model A, model B, outcome "a"|"b"|"tie", the pair's position: its comparison) from every vote of
    pairs whose two sets came from different models."""
    outcome = {1: "a", 2: "b", 0: "tie"}
    games = []
    for pair in pairs:
        if pair.set1_model_id and pair.set2_model_id and pair.set1_model_id != pair.set2_model_id:
            votes = pair.votes or [{"choice": pair.preference}]
            for vote in votes:
                games.append((pair.set1_model_id, pair.set2_model_id, outcome[int(vote["choice"])], pair.position))
    return games


def benchmark_collection_note(benchmark: PreferenceBenchmark) -> str:
    """One sentence saying how a campaign benchmark's votes were collected when it was built adaptively, else ""."""
    settings = (benchmark.report or {}).get("collection") or {}
    parts = []
    if settings.get("adaptive_overlap"):
        parts.append(
            f"adaptive overlap ({settings['min_votes_per_pair']} to {settings['votes_per_pair']} votes per pair, "
            f"stopping once the majority is decided with confidence {settings['overlap_confidence']:g})"
        )
    if settings.get("pair_selection") == "informative":
        parts.append(
            f"informative pair selection ({settings['random_share']:.0%} of pairs drawn uniformly at random), "
            "every figure (agreement, preference ratio, per category) a Hajek estimate weighting each pair by "
            "its Horvitz-Thompson design weight (1/π of the rounds' Poisson draws)"
        )
    if not parts:
        return ""
    return "Votes were collected with " + " and ".join(parts) + "."


def benchmark_labels_note(benchmark: PreferenceBenchmark) -> str:
    """One sentence on who can see the benchmark's verdicts, or "" for a campaign benchmark without a hidden split.

    Public labels (an imported release): a score file can encode them. A hidden split: its verdicts are never
    exported or shown and score files are ranked on it. A benchmark with a hidden split names it.
    """
    if benchmark.labels_public:
        return ("Labels public: the human verdicts of this benchmark are published, so a score file can simply "
                "encode them; score-file rows are marked.")
    if benchmark.hidden_split_of_id is not None:
        return (f"Hidden split of {benchmark.hidden_split_of}: its human verdicts are never exported or shown; "
                "score files are ranked here.")
    hidden = benchmark.hidden_splits.order_by("-version").first()
    if hidden is not None:
        return (f"Score files are ranked on the hidden split {hidden.name} ({hidden.n_pairs} pairs, labels never "
                "exported).")
    return ""


# --- preference model and the agreement estimator setting -----------------------------------------


def preference_model_board(*, benchmark: PreferenceBenchmark, user) -> dict[str, Any]:
    """The benchmark's agreement estimator and its latest finished preference model, for the caller.

    Returns ``{"estimator": "classic" | "ppi", "estimator_label", "model": None | {version, method, folds, n_pairs,
    agreement, log_loss, margin_over_best, log_loss_gain_over_best, best_model, inputs, rows: [{model, agreement,
    log_loss}]}, "ppi": {model id:
    PPIEstimate dict}, "ppi_note": why no prediction-powered figure is shown, or ""}``. Only models the caller may
    see appear (by name in ``rows``, by id in ``ppi``); the margin is shown only when the best model is visible.
    Prediction-powered figures are computed when the setting is ``ppi`` and the preference model carries unlabelled
    candidate pairs (:mod:`hpbench.metrics.ppi`; design weights when the pairs have them).
    """
    from hpbench.leaderboard.models import PreferenceModel

    estimator = benchmark.agreement_estimator
    out: dict[str, Any] = {"estimator": estimator, "estimator_label": benchmark.get_agreement_estimator_display(),
                           "model": None, "ppi": {}, "ppi_note": ""}
    row = (PreferenceModel.objects.filter(benchmark=benchmark, status=PreferenceModel.Status.FINISHED)
           .order_by("-version").first())
    if row is None:
        if estimator == PreferenceBenchmark.Estimator.PPI:
            out["ppi_note"] = "No trained preference model yet: the classic estimate is shown."
        return out
    visible = model_entries_visible_to(user)
    visible_names = set(visible.filter(pk__in=row.feature_models).values_list("name", flat=True))
    report = row.report or {}
    best = report.get("best_model")
    out["model"] = {
        "version": row.version,
        "method": row.method,
        "folds": row.folds,
        "inputs": report.get("inputs") or "exact choices and set makers",
        "n_pairs": report.get("n_pairs"),
        "agreement": report.get("preference_model", {}).get("agreement"),
        "log_loss": report.get("preference_model", {}).get("log_loss"),
        "best_model": best if best in visible_names else None,
        "margin_over_best": report.get("margin_over_best") if best in visible_names else None,
        "log_loss_gain_over_best": report.get("log_loss_gain_over_best") if best in visible_names else None,
        "rows": sorted(
            ({"model": name, **figures} for name, figures in (report.get("models") or {}).items()
             if name in visible_names),
            key=lambda r: -r["agreement"]["value"],
        ),
        "finished_at": row.finished_at,
    }
    if estimator == PreferenceBenchmark.Estimator.PPI:
        out["ppi"], out["ppi_note"] = _ppi_figures(benchmark=benchmark, row=row, visible=visible)
    return out


def ppi_inputs(*, benchmark: PreferenceBenchmark, row, models=None) -> dict[str, Any]:
    """Everything the prediction-powered agreement of ``benchmark``'s models is computed from, given its preference
    model ``row`` (``models``: a queryset of model entries to include, default every scored one).

    ``Y`` is a model's exact choices' credit on the decided pairs; ``f`` the expected credit under the preference
    model, on the labelled pairs from the same inputs as on the candidates (``labelled_p``/``labelled_choices`` when
    the worker stored them, else the stored out-of-fold predictions and the exact choices). Returns ``{"skipped":
    why}`` when the model has no unlabelled candidates, else ``{"human", "weights", "labelled_p", "candidate_p",
    "candidate_keys", "models": {model id: {"name", "choices", "labelled_choices", "candidate_choices"}}}``
    (numpy arrays; ``weights`` None when every pair weighs 1). A model whose stored inputs do not fit is left out.
    """
    import numpy as np

    candidates = row.candidates or {}
    cand_p = np.asarray(candidates.get("p") or [], dtype=np.float64)
    if cand_p.size == 0:
        return {"skipped": candidates.get("skipped") or "the preference model has no unlabelled candidate pairs"}
    p = row.probabilities()
    human, weights = map(np.asarray, zip(*benchmark.pairs.order_by("position").values_list(
        "preference", "selection_weight"), strict=True))
    labelled_p = np.asarray(candidates.get("labelled_p") or p if p is not None else [], dtype=np.float64)
    scores = ModelScore.objects.filter(benchmark=benchmark, status=ModelScore.Status.FINISHED).select_related("model")
    if models is not None:
        scores = scores.filter(model__in=models)
    out: dict[str, Any] = {"human": human, "weights": weights if (weights != 1.0).any() else None,
                           "labelled_p": labelled_p, "candidate_p": cand_p,
                           "candidate_keys": candidates.get("keys"), "models": {}}
    for score in scores.order_by("model_id"):
        choices = score.choices()
        key = str(score.model_id)
        cand_choices = (candidates.get("choices") or {}).get(key)
        lab_choices = (candidates.get("labelled_choices") or {}).get(key)
        lab_choices = np.asarray(lab_choices, dtype=np.int8) if lab_choices is not None else choices
        if (choices is None or cand_choices is None or len(cand_choices) != cand_p.size
                or labelled_p.size != human.size or lab_choices is None or lab_choices.size != human.size):
            continue
        out["models"][score.model_id] = {"name": score.model.name, "choices": choices,
                                         "labelled_choices": lab_choices,
                                         "candidate_choices": np.asarray(cand_choices, dtype=np.int8)}
    return out


def _ppi_figures(*, benchmark: PreferenceBenchmark, row, visible) -> tuple[dict[int, dict], str]:
    """PPI++ agreement per visible model, from :func:`ppi_inputs`."""
    import numpy as np

    from hpbench.metrics.ppi import credit, expected_credit, ppi_mean

    inputs = ppi_inputs(benchmark=benchmark, row=row, models=visible)
    if "skipped" in inputs:
        return {}, f"Prediction-powered agreement needs unlabelled candidate pairs ({inputs['skipped']}): the " \
                   "classic estimate is shown."
    human = inputs["human"]
    decided = human != 0
    design = inputs["weights"][decided] if inputs["weights"] is not None else None
    out = {}
    for model_id, m in inputs["models"].items():
        f_lab = expected_credit(inputs["labelled_p"][decided], m["labelled_choices"][decided])
        f_all = np.concatenate([f_lab, expected_credit(inputs["candidate_p"], m["candidate_choices"])])
        est = ppi_mean(credit(m["choices"][decided], human[decided]), f_lab, f_all, weights=design)
        out[model_id] = est.as_dict()
    return out, ""


def leaderboard_with_estimator(board: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    """``board`` (:func:`leaderboard`) with each row's agreement replaced by its prediction-powered estimate where
    ``section`` (:func:`preference_model_board`) has one; the classic figures stay as ``agreement_classic*``, and
    every row says which it shows (``agreement_estimator``). Ranks and order are left as computed."""
    for row in board["rows"]:
        estimate = section["ppi"].get(row["model_id"])
        row["agreement_estimator"] = "ppi" if estimate else "classic"
        if estimate:
            row["ppi_labelled"] = estimate["n_labelled"]  # decided pairs
            row["ppi_predicted"] = estimate["n_candidates"] - estimate["n_labelled"]  # unlabelled candidates
            row["agreement_classic"] = row["agreement"]
            row["agreement_classic_low"], row["agreement_classic_high"] = row["agreement_low"], row["agreement_high"]
            row["agreement"], row["agreement_low"], row["agreement_high"] = (
                estimate["value"], estimate["lower"], estimate["upper"])
    board["agreement_estimator"] = section["estimator"]
    board["preference_model"] = {k: v for k, v in section.items() if k != "estimator"}
    return board
