"""Training a benchmark's preference model (worker only: the fit imports torch).

Reads the benchmark's pairs and every finished model score that stored its per-pair choices, builds the features
(:mod:`models_zoo.preference.features`), fits with K-fold cross-fitting over queries (pairs without a query form
their own group), evaluates on the held-out predictions and stores them (:mod:`hpbench.leaderboard.services.
preference_models`). Pairs the humans called a tie are not trained on; their prediction comes from a fit on every
decided pair (they were never its labels).
"""

from __future__ import annotations

import time
import traceback

import numpy as np

from hpbench.leaderboard.models import ModelScore, PreferenceModel
from hpbench.leaderboard.services.preference_models import preference_model_fail, preference_model_store
from models_zoo.preference.evaluate import heldout_report
from models_zoo.preference.features import pair_features
from models_zoo.preference.model import cross_fit, fit, folds_by_group, predict
from worker import claims


def preference_model_execute(*, model_id: int) -> str:
    """Claim the row (queued -> running), train, evaluate and store; returns the final status. Idempotent: a row
    already claimed by a live worker, finished or cancelled is left alone."""
    owner = claims.worker_identity()
    if not claims.job_claim(model=PreferenceModel, pk=model_id, owner=owner, reset={"progress": 0.0}):
        return PreferenceModel.objects.filter(pk=model_id).values_list("status", flat=True).first() or "missing"
    beat = claims.Heartbeat(model=PreferenceModel, pk=model_id, owner=owner).start()
    try:
        row = PreferenceModel.objects.select_related("benchmark").get(pk=model_id)
        started = time.perf_counter()
        pairs = list(row.benchmark.pairs.order_by("position").values_list(
            "position", "preference", "set1_model_id", "set2_model_id", "query_id"))
        if not pairs:
            raise ValueError(f"benchmark {row.benchmark.label} has no pairs")
        scores = [s for s in ModelScore.objects.filter(benchmark=row.benchmark, status=ModelScore.Status.FINISHED)
                  .select_related("model").order_by("model_id") if s.pair_choices is not None]
        if not scores:
            raise ValueError(f"benchmark {row.benchmark.label} has no finished model score with per-pair choices: "
                             "score at least one model first")
        choices = np.stack([s.choices() for s in scores])
        if choices.shape[1] != len(pairs):
            raise ValueError(f"stored choices cover {choices.shape[1]} pairs, the benchmark has {len(pairs)}")
        makers = sorted({m for _, _, a, b, _ in pairs for m in (a, b) if m is not None})
        index = {m: i for i, m in enumerate(makers)}
        m1 = np.array([index.get(a, -1) if a is not None else -1 for _, _, a, _, _ in pairs])
        m2 = np.array([index.get(b, -1) if b is not None else -1 for _, _, _, b, _ in pairs])
        x = pair_features(choices, m1, m2, len(makers))
        human = np.array([p for _, p, _, _, _ in pairs])
        decided = human != 0
        if decided.sum() < 2 * row.folds:
            raise ValueError(f"{int(decided.sum())} pairs with a human preference: too few for {row.folds} folds")
        groups = np.array([f"q{q}" if q is not None else f"p{pos}" for pos, _, _, _, q in pairs])
        folds = folds_by_group(groups[decided], row.folds, seed=row.seed)
        y = human[decided] == 1
        p = np.empty(len(pairs))
        p[decided] = cross_fit(x[decided], y, folds)
        if (~decided).any():
            p[~decided] = predict(fit(x[decided], y), x[~decided])
        report = heldout_report(p[decided], y, {s.model.name: choices[i][decided] for i, s in enumerate(scores)},
                                folds, seed=row.seed)
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["folds"] = row.folds
        if not claims.job_is_mine(model=PreferenceModel, pk=model_id, owner=owner):
            return "cancelled"
        preference_model_store(model_id=model_id, predictions=p.astype(np.float64).tobytes(),
                               feature_models=[s.model_id for s in scores], report=report)
    except Exception as exc:  # the row must say what went wrong; the worker stays up
        preference_model_fail(model_id=model_id, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        return "failed"
    finally:
        beat.stop()
    return "finished"
