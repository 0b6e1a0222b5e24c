"""Training a benchmark's preference model (worker only: the fit imports torch).

Reads the benchmark's pairs and every finished model score that stored its per-pair choices, builds the features
(:mod:`models_zoo.preference.features`), fits with K-fold cross-fitting over queries (pairs without a query form
their own group), evaluates on the held-out predictions and stores them (:mod:`hpbench.leaderboard.services.
preference_models`). Pairs the humans called a tie are not trained on; their prediction comes from a fit on every
decided pair (they were never its labels).

**Candidates for prediction-powered agreement** (:func:`candidate_inputs`): for a benchmark frozen from a campaign
whose set makers and scored models all have a finished retrieval run on the campaign's split, every (covered query,
pair of makers) the campaign never compared, with each scored model's choice between the two makers' top
``set_size`` sets from its stored top-K (an image outside it counting as its K-th score, as
``annotate/selection.py`` scores sets). PPI needs the predictor to be the same function on labelled and unlabelled
pairs, so the labelled pairs' choices are recomputed the same way (``labelled_choices``) and both get their
probabilities from the same fold fits: a labelled pair from its out-of-fold fit, a candidate from the folds' mean
(cross-prediction). The figure ``Y`` itself uses the model's exact choices (its score row).
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
        choices = np.stack([c for c in (s.choices() for s in scores) if c is not None])
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
        betas = [fit(x[decided][folds != f], y[folds != f]) for f in range(row.folds)]
        p = np.empty(len(pairs))
        p[decided] = cross_fit(x[decided], y, folds)
        if (~decided).any():
            p[~decided] = predict(fit(x[decided], y), x[~decided])
        try:  # the model and its figures stand without candidates: PPI then says why it is not shown
            candidates = candidate_inputs(benchmark=row.benchmark, scores=scores, makers=makers, betas=betas,
                                          decided_folds=dict(zip(np.flatnonzero(decided).tolist(), folds.tolist(),
                                                                 strict=True)))
        except Exception as exc:
            candidates = {"skipped": f"{type(exc).__name__}: {exc}"}
        report = heldout_report(p[decided], y, {s.model.name: choices[i][decided] for i, s in enumerate(scores)},
                                folds, seed=row.seed)
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["folds"] = row.folds
        if not claims.job_is_mine(model=PreferenceModel, pk=model_id, owner=owner):
            return "cancelled"
        preference_model_store(model_id=model_id, predictions=p.astype(np.float64).tobytes(),
                               feature_models=[s.model_id for s in scores], report=report, candidates=candidates)
    except Exception as exc:  # the row must say what went wrong; the worker stays up
        preference_model_fail(model_id=model_id, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        return "failed"
    finally:
        beat.stop()
    return "finished"


def _set_score(ranked: tuple[list[int], list[float]], images: list[int]) -> float:
    ids, scores = ranked
    lookup = dict(zip(ids, scores, strict=True))
    floor = scores[-1] if scores else 0.0
    return sum(lookup.get(i, floor) for i in images) / max(1, len(images))


def _choice(ranked: tuple[list[int], list[float]], set1: list[int], set2: list[int]) -> int:
    s1, s2 = _set_score(ranked, set1), _set_score(ranked, set2)
    return 1 if s1 > s2 else (2 if s2 > s1 else 0)


def candidate_inputs(*, benchmark, scores: list, makers: list[int], betas: list, decided_folds: dict[int, int]) -> dict:
    """Unlabelled candidates and the labelled pairs' top-K features (module docstring); ``{}`` when the benchmark
    is not a campaign's or a model lacks a finished run (``{"skipped": why}``)."""
    from annotate.errors import BuildError
    from annotate.services.campaign_build import _full_topks, _latest_runs
    from hpbench.catalog.models import ModelEntry

    campaign = benchmark.campaign
    if campaign is None:
        return {}
    scorer_ids = [s.model_id for s in scores]
    try:
        entries = list(ModelEntry.objects.filter(pk__in=set(scorer_ids) | set(makers)).order_by("pk"))
        topks = _full_topks(_latest_runs(campaign, entries))
    except BuildError as exc:
        return {"skipped": str(exc)}
    k = campaign.set_size
    compared = {(q, min(a, b), max(a, b)) for q, a, b in campaign.comparisons.filter(
        is_gold=False, set_a_model__isnull=False, set_b_model__isnull=False).values_list(
        "query_id", "set_a_model_id", "set_b_model_id")}
    covered = sorted(set.intersection(*(set(q for q, (ids, _) in topks[m].items() if len(ids) >= k)
                                        for m in topks)))
    rows, m1, m2 = [], [], []
    index = {m: i for i, m in enumerate(makers)}
    for q in covered:
        for x, i in enumerate(makers):
            for j in makers[x + 1:]:
                set1, set2 = topks[i][q][0][:k], topks[j][q][0][:k]
                if (q, i, j) in compared or set(set1) == set(set2):
                    continue
                rows.append([_choice(topks[s][q], set1, set2) for s in scorer_ids])
                m1.append(index[i])
                m2.append(index[j])
    labelled_choices, labelled_p = [], []
    pairs = list(benchmark.pairs.order_by("position").values_list(
        "query_id", "set1_image_ids", "set2_image_ids", "set1_model_id", "set2_model_id"))
    for q, set1, set2, _, _ in pairs:
        if q not in covered:
            return {"skipped": f"a labelled pair's query {q} is not covered by every model's run"}
        labelled_choices.append([_choice(topks[s][q], set1, set2) for s in scorer_ids])
    lab_x = pair_features(np.asarray(labelled_choices, dtype=np.int8).T.reshape(len(scorer_ids), len(pairs)),
                          np.array([index.get(a, -1) if a else -1 for _, _, _, a, _ in pairs]),
                          np.array([index.get(b, -1) if b else -1 for _, _, _, _, b in pairs]), len(makers))
    for n in range(len(pairs)):
        fold = decided_folds.get(n)
        row_p = [predict(beta, lab_x[n:n + 1])[0] for beta in betas]
        labelled_p.append(float(row_p[fold]) if fold is not None else float(np.mean(row_p)))
    choices = np.asarray(rows, dtype=np.int8).T.reshape(len(scorer_ids), len(rows))
    cand_x = pair_features(choices, np.asarray(m1, dtype=np.int64), np.asarray(m2, dtype=np.int64), len(makers))
    cand_p = np.mean([predict(beta, cand_x) for beta in betas], axis=0) if rows else np.zeros(0)
    labelled = np.asarray(labelled_choices, dtype=np.int8).reshape(len(pairs), len(scorer_ids))
    return {
        "p": cand_p.tolist(),
        "choices": {str(s): choices[n].tolist() for n, s in enumerate(scorer_ids)},
        "labelled_p": labelled_p,
        "labelled_choices": {str(s): labelled[:, n].tolist() for n, s in enumerate(scorer_ids)},
    }
