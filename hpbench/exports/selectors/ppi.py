"""The inputs of a benchmark's prediction-powered agreement, as one JSON document (export format ``ppi``).

With it anyone can recompute every model's PPI++ estimate (:mod:`hpbench.metrics.ppi`) without the platform:
per benchmark pair (position order) the human verdict, its design weight, the preference model's probability that
people prefer set 1 (cross-fitted: from a fit that never saw the pair) and each model's choices (its exact ones,
for ``Y``, and those computed from its top-K as on the candidates, for ``f``); per unlabelled candidate (query,
the two set makers) the preference model's probability and each model's choice. Model and query names only: no
annotator, no vote.
"""

from __future__ import annotations

from typing import Any

from hpbench.exports.selectors.pairs import benchmark_of
from hpbench.exports.selectors.params import ExportError, ExportParams


def ppi_document(params: ExportParams) -> dict[str, Any]:
    """The JSON-able document for the export's benchmark and its newest finished preference model.

    Raises :class:`ExportError` without a benchmark, for a hidden split, without a finished preference model or
    when the model has no unlabelled candidates (naming why).
    """
    from hpbench.catalog.models import ModelEntry, Query
    from hpbench.leaderboard.models import PreferenceModel
    from hpbench.leaderboard.selectors import ppi_inputs
    from hpbench.metrics.ppi import PPIEstimate

    benchmark = benchmark_of(params)
    if benchmark is None:
        raise ExportError("format ppi: name a benchmark (--benchmark NAME[:VERSION])")
    if benchmark.hidden_split_of_id is not None:
        raise ExportError(f"benchmark: {benchmark} is a hidden split; its verdicts are never exported")
    row = (PreferenceModel.objects.filter(benchmark=benchmark, status=PreferenceModel.Status.FINISHED)
           .order_by("-version").first())
    if row is None:
        raise ExportError(f"format ppi: benchmark {benchmark.label} has no trained preference model")
    inputs = ppi_inputs(benchmark=benchmark, row=row)
    if "skipped" in inputs:
        raise ExportError(f"format ppi: the preference model of {benchmark.label} has no unlabelled candidates "
                          f"({inputs['skipped']})")
    keys = inputs["candidate_keys"] or []
    query_keys = dict(Query.objects.filter(pk__in={k[0] for k in keys}).values_list("pk", "key"))
    makers = dict(ModelEntry.objects.filter(pk__in={m for k in keys for m in k[1:]}).values_list("pk", "name"))
    weights = inputs["weights"]
    return {
        "benchmark": benchmark.name,
        "version": benchmark.version,
        "agreement_estimator": benchmark.agreement_estimator,
        "estimator": PPIEstimate.method,
        "formula": "hpbench.metrics.ppi: theta = lam * mean_all f + mean_labelled (Y - lam f); Y = credit of the "
                   "model's choices against the verdict on decided pairs (1 agree, 0 disagree, 0.5 model tie); "
                   "f = p where the model picks set 1, 1 - p where set 2, 0.5 on a tie; 'all' = the decided "
                   "labelled pairs then every candidate; lam = Cov(Y, f) / ((1 + n / N) Var(f)) clipped to "
                   "[0, 1]; with weights, weighted means (Hajek) and n = (sum w)^2 / sum w^2.",
        "preference_model": {"version": row.version, "method": row.method, "folds": row.folds,
                             "inputs": (row.report or {}).get("inputs"),
                             "finished_at": row.finished_at.isoformat() if row.finished_at else None},
        "labelled": {
            "preference": inputs["human"].tolist(),
            "weight": weights.tolist() if weights is not None else [1.0] * int(inputs["human"].size),
            "p_set1": inputs["labelled_p"].tolist(),
        },
        "candidates": {
            "query": [query_keys.get(k[0]) for k in keys],
            "set1_model": [makers.get(k[1]) for k in keys],
            "set2_model": [makers.get(k[2]) for k in keys],
            "p_set1": inputs["candidate_p"].tolist(),
        },
        "models": {
            m["name"]: {"choices": m["choices"].tolist(), "labelled_choices": m["labelled_choices"].tolist(),
                        "candidate_choices": m["candidate_choices"].tolist()}
            for m in inputs["models"].values()
        },
    }
