"""Training a benchmark's preference model (worker only: the fit imports torch).

Reads the benchmark's pairs and every finished model score that stored its per-pair choices, builds the features
(:mod:`models_zoo.preference.features`), fits with K-fold cross-fitting over queries (pairs without a query form
their own group), evaluates on the held-out predictions and stores them (:mod:`hpbench.leaderboard.services.
preference_models`). Pairs the humans called a tie are not trained on; their prediction is the fold fits' mean
(they were never a label).

**Inputs** (:func:`topk_inputs`): for a benchmark frozen from a campaign whose set makers and scored models all
have a finished retrieval run on the campaign's split, each scored model's *set-score gap* on a pair (the mean of
its scores over set 1's images minus over set 2's, from its stored top-K, an image outside it counting as its K-th
score, as ``annotate/selection.py`` scores sets), scaled per model by its root mean square over every pair,
labelled or not (:func:`~models_zoo.preference.features.gap_scale`), and which set shows the query's reference
image (:func:`~models_zoo.preference.features.gap_features`). Otherwise (an imported benchmark, a model without a
run) it learns from the exact choices of the score rows, the makers and the reference shown, and the report says
why (``inputs_note``). Each fold's L2 strength is chosen by cross-validated log-loss on that fold's training pairs
only (nested, :func:`~models_zoo.preference.model.choose_l2`; ``report["l2"]``).

**Candidates for prediction-powered agreement**: with top-K inputs, every (covered query, pair of makers) the
campaign never compared. PPI needs the predictor to be the same function on labelled and unlabelled pairs: both
get their features from top-K the same way and their probabilities from the same fold fits: a labelled pair from
its out-of-fold fit, a candidate from the folds' mean (cross-prediction). The figure ``Y`` itself uses the model's
exact choices (its score row).
"""

from __future__ import annotations

import time
import traceback

import numpy as np

from hpbench.leaderboard.models import ModelScore, PreferenceModel
from hpbench.leaderboard.services.preference_models import preference_model_fail, preference_model_store
from models_zoo.preference.evaluate import heldout_report
from models_zoo.preference.features import gap_features, gap_scale, pair_features, reference_shown
from models_zoo.preference.model import choose_l2, fit, folds_by_group, predict
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
            "position", "preference", "set1_model_id", "set2_model_id", "query_id", "reference_id",
            "set1_image_ids", "set2_image_ids"))
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
        makers = sorted({m for _, _, a, b, *_ in pairs for m in (a, b) if m is not None})
        index = {m: i for i, m in enumerate(makers)}
        m1 = np.array([index.get(a, -1) if a is not None else -1 for _, _, a, _, *_ in pairs])
        m2 = np.array([index.get(b, -1) if b is not None else -1 for _, _, _, b, *_ in pairs])
        human = np.array([p[1] for p in pairs])
        shown = np.array([reference_shown(ref, s1, s2) for *_, ref, s1, s2 in pairs])
        decided = human != 0
        if decided.sum() < 2 * row.folds:
            raise ValueError(f"{int(decided.sum())} pairs with a human preference: too few for {row.folds} folds")
        try:  # the model and its figures stand without top-K inputs: it then learns from the exact choices
            topk = topk_inputs(benchmark=row.benchmark, scores=scores, makers=makers)
        except Exception as exc:
            topk = {"skipped": f"{type(exc).__name__}: {exc}"}
        if "labelled_gaps" in topk:
            scale = gap_scale(topk["labelled_gaps"], topk["candidate_gaps"])[:, None]
            x = gap_features(topk["labelled_gaps"] / scale, shown)
            cand_x = gap_features(topk["candidate_gaps"] / scale, topk["candidate_reference"])
            inputs = "set-score gaps (from their top-K) and which set shows the reference"
        else:
            x, cand_x = pair_features(choices, m1, m2, len(makers), reference=shown), None
            inputs = "exact choices, the set makers and which set shows the reference"
        groups = np.array([f"q{q}" if q is not None else f"p{pos}" for pos, _, _, _, q, *_ in pairs])
        folds = folds_by_group(groups[decided], row.folds, seed=row.seed)
        y = human[decided] == 1
        # Each fold's L2 strength by cross-validation on its own training folds only (nested: never its held-out
        # pairs), then its fit.
        l2s = [choose_l2(x[decided][folds != f], y[folds != f], folds[folds != f]) for f in range(row.folds)]
        betas = [fit(x[decided][folds != f], y[folds != f], l2=l2s[f]) for f in range(row.folds)]
        fold_p = np.stack([predict(beta, x) for beta in betas])  # (folds, pairs)
        p = fold_p.mean(axis=0)  # a human tie was no fold's label: the folds' mean
        p[np.flatnonzero(decided)] = fold_p[folds, np.flatnonzero(decided)]  # a decided pair: its out-of-fold fit
        if cand_x is not None:
            candidates = {
                "p": (np.mean([predict(beta, cand_x) for beta in betas], axis=0).tolist() if len(cand_x) else []),
                "choices": {str(s.model_id): topk["candidate_choices"][n].tolist() for n, s in enumerate(scores)},
                "keys": topk["candidate_keys"],
                "labelled_p": p.tolist(),
                "labelled_choices": {str(s.model_id): topk["labelled_choices"][n].tolist()
                                     for n, s in enumerate(scores)},
            }
        else:
            candidates = {"skipped": topk["skipped"]} if "skipped" in topk else {}
        report = heldout_report(p[decided], y, {s.model.name: choices[i][decided] for i, s in enumerate(scores)},
                                folds, seed=row.seed)
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["folds"] = row.folds
        report["inputs"] = inputs
        report["l2"] = l2s
        if "skipped" in topk:
            report["inputs_note"] = topk["skipped"]
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


def topk_inputs(*, benchmark, scores: list, makers: list[int]) -> dict:
    """Each scoring model's choice and set-score gap (set 1 minus set 2) from its stored top-K, on the labelled
    pairs and on the unlabelled candidates (module docstring): ``{"labelled_choices", "labelled_gaps"}`` ``(K, P)``,
    ``{"candidate_choices", "candidate_gaps"}`` ``(K, C)``, ``candidate_m1``/``candidate_m2`` (maker indices
    into ``makers``), ``candidate_reference`` (:func:`reference_shown`) and ``candidate_keys`` (``[query, maker,
    maker]`` primary keys); ``{}`` when the benchmark is not a campaign's, ``{"skipped": why}`` when a model lacks a
    finished run or a labelled pair's query is not covered by every run."""
    from annotate.errors import BuildError
    from annotate.selection import TopkSetScores
    from annotate.services.campaign_build import _full_topks, _latest_runs
    from hpbench.catalog.models import ModelEntry, Query

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
    covered = set.intersection(*(set(q for q, (ids, _) in topks[m].items() if len(ids) >= k) for m in topks))
    labelled = list(benchmark.pairs.order_by("position").values_list("query_id", "set1_image_ids",
                                                                      "set2_image_ids"))
    for q, _, _ in labelled:
        if q not in covered:
            return {"skipped": f"a labelled pair's query {q} is not covered by every model's run"}
    references = dict(Query.objects.filter(pk__in=covered).values_list("pk", "reference_id"))
    cand_sets, m1, m2 = [], [], []
    for q in sorted(covered):
        for x, i in enumerate(makers):
            for y in range(x + 1, len(makers)):
                j = makers[y]
                set1, set2 = topks[i][q][0][:k], topks[j][q][0][:k]
                if (q, i, j) in compared or set(set1) == set(set2):
                    continue
                cand_sets.append((q, set1, set2))
                m1.append(x)
                m2.append(y)

    def scored(rows: list) -> tuple[np.ndarray, np.ndarray]:
        gaps = np.array([[scorer.set_score(q, set1) - scorer.set_score(q, set2) for q, set1, set2 in rows]
                         for scorer in scorers], dtype=np.float64).reshape(len(scorer_ids), len(rows))
        return np.where(gaps > 0, 1, np.where(gaps < 0, 2, 0)).astype(np.int8), gaps

    scorers = [TopkSetScores(topks[s]) for s in scorer_ids]
    lab_choices, lab_gaps = scored(labelled)
    cand_choices, cand_gaps = scored(cand_sets)
    return {"labelled_choices": lab_choices, "labelled_gaps": lab_gaps, "candidate_choices": cand_choices,
            "candidate_gaps": cand_gaps, "candidate_m1": np.asarray(m1, dtype=np.int64),
            "candidate_m2": np.asarray(m2, dtype=np.int64),
            "candidate_reference": np.array([reference_shown(references.get(q), s1, s2) for q, s1, s2 in cand_sets]),
            "candidate_keys": [[q, makers[i], makers[j]] for (q, _, _), i, j in zip(cand_sets, m1, m2, strict=True)]}
