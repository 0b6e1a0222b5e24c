"""Model scores on benchmarks: queued on request, claimed and advanced by a worker, stored or failed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from hpbench import dispatch
from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from hpbench.leaderboard.services.figures import category_figures, heldout_figures, preference_figures, vote_codes

if TYPE_CHECKING:
    import numpy as np


def model_scores_request(
    *, model: ModelEntry, benchmarks: Iterable[PreferenceBenchmark] | None = None, force: bool = False
) -> list[ModelScore]:
    """Queue scoring of ``model`` on ``benchmarks`` (default: every active benchmark); dispatched on commit.

    A finished score is left alone unless ``force``; a running one is not queued twice; a queued one gets its
    message again (it may have been lost; a duplicate is harmless: the worker's claim is a conditional UPDATE).
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
                if score.status == ModelScore.Status.RUNNING:
                    continue
                if score.status == ModelScore.Status.QUEUED:  # asking again sends again
                    if ModelScore.objects.filter(pk=score.pk, status=ModelScore.Status.QUEUED).update(
                        heartbeat_at=timezone.now()
                    ):
                        queued.append(score)
                        dispatch.task_send_on_commit(task, score.pk)
                    continue
                if score.status == ModelScore.Status.FINISHED and not force:
                    continue
                ModelScore.objects.filter(pk=score.pk).update(
                    status=ModelScore.Status.QUEUED, progress=0.0, error="", started_at=None,
                    claimed_by="", heartbeat_at=timezone.now(), restarts=0,
                )
                score.refresh_from_db()
            queued.append(score)
            dispatch.task_send_on_commit(task, score.pk)
    return queued


def model_score_store(
    *, score_id: int, set1: Sequence[float] | np.ndarray, set2: Sequence[float] | np.ndarray,
    timings: dict | None = None,
) -> ModelScore:
    """Compute and store a model's figures, overall, per category (:func:`category_figures`) and on its held-out
    pairs (:func:`heldout_figures`), from its per-pair set scores (benchmark order), all weighted by the pairs'
    selection weights when any differs from 1; marks it finished.

    Raises ``ValueError`` when the number of scores differs from the benchmark's pairs.
    """
    score = ModelScore.objects.select_related("benchmark").get(pk=score_id)
    rows = list(
        score.benchmark.pairs.order_by("position")
        # The pair's own category; pairs stored without one (before it was kept) count under their reference's.
        .annotate(group=Coalesce(NullIf("category", Value("")), "reference__category"))
        .values_list("preference", "group", "selection_weight", "set1_makers", "set2_makers", "votes")
    )
    human = [row[0] for row in rows]
    if len(human) != len(set1):
        raise ValueError(f"score {score_id}: {len(set1)} set scores for {len(human)} pairs")
    # One estimand per benchmark: a benchmark drawn by informative selection weights every figure by the pairs'
    # design weights (Hajek), the others weight none.
    weights = [row[2] for row in rows]
    design = weights if any(w != 1.0 for w in weights) else None
    figures = preference_figures(set1=set1, set2=set2, human=human, weights=design)
    by_category = category_figures(
        set1=set1, set2=set2, human=human, categories=[row[1] for row in rows], weights=design
    )
    from hpbench.metrics.preference import model_choices

    choices = model_choices(set1, set2)
    figures.update(heldout_figures(
        model_id=score.model_id, choices=choices, human=human, weights=weights, makers1=[row[3] for row in rows],
        makers2=[row[4] for row in rows], votes_by_pair=[vote_codes(row[5]) for row in rows],
    ))
    ModelScore.objects.filter(pk=score_id).update(
        **figures,
        pair_choices=choices.tobytes(),
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
