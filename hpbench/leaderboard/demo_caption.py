"""What the demo benchmark's page says about itself (no torch; read by the leaderboard view).

The built-in demo's numbers mean little without knowing what made them, so its page carries a short caption:
what the data is, what the chance line is, what the baselines are for, each demo model's Recall@10/@50 with
intervals, and one sentence comparing the paper's method (``demo-qure``) with its contrastive baseline,
computed from the scores on the page rather than written in advance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hpbench.catalog.models import Dataset, Query, RetrievalRun

QURE, CONTRASTIVE, TEXT_ONLY = "demo-qure", "demo-contrastive", "demo-text-only"


def recall_interval(per_category: dict[str, float], counts: dict[str, int], k: int) -> tuple[float, float] | None:
    """95% normal-approximation interval of FashionIQ's mean R@k (percent) over categories.

    ``per_category`` maps a category to its R@k in percent, ``counts`` to its number of queries; the mean's
    variance is ``sum(p (1 - p) / n) / C**2`` (queries independent, categories weighted equally). None when
    a category has no count.
    """
    if not per_category or any(counts.get(category, 0) <= 0 for category in per_category):
        return None
    shares = {category: value / 100 for category, value in per_category.items()}
    mean = sum(shares.values()) / len(shares)
    variance = sum(p * (1 - p) / counts[c] for c, p in shares.items()) / len(shares) ** 2
    half = 1.96 * math.sqrt(variance)
    return 100 * max(0.0, mean - half), 100 * min(1.0, mean + half)


def _recalls(dataset: Dataset, model_ids: list[int]) -> dict[int, dict[str, Any]]:
    runs: dict[int, RetrievalRun] = {}
    for run in RetrievalRun.objects.filter(
        model_id__in=model_ids, dataset=dataset, status=RetrievalRun.Status.FINISHED
    ).order_by("model_id", "-finished_at", "-id"):
        runs.setdefault(run.model_id, run)
    counts: dict[tuple[str, str], int] = {}
    out: dict[int, dict[str, Any]] = {}
    for model_id, run in runs.items():
        metrics = run.metrics or {}
        mean = metrics.get("mean") or {}
        if "R@10" not in mean or "R@50" not in mean:
            continue
        categories = [c for c, v in metrics.items() if isinstance(v, dict) and c != "mean" and "R@10" in v]
        for category in categories:
            if (run.split, category) not in counts:
                counts[(run.split, category)] = Query.objects.filter(
                    dataset=dataset, split=run.split, category=category, target__isnull=False
                ).count()
        per_split = {c: counts[(run.split, c)] for c in categories}
        row: dict[str, Any] = {}
        for k in (10, 50):
            interval = recall_interval({c: float(metrics[c][f"R@{k}"]) for c in categories}, per_split, k)
            row[f"r{k}"] = float(mean[f"R@{k}"])
            row[f"r{k}_low"], row[f"r{k}_high"] = interval if interval else (None, None)
        out[model_id] = row
    return out


def _headline(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A row's headline figures as ``agreement``/``_low``/``_high``: held-out agreement where it has one, else the
    agreement on all pairs (scores stored before held-out figures)."""
    if not row or row.get("heldout_agreement") is None:
        return row
    return {**row, "agreement": row["heldout_agreement"], "agreement_low": row.get("heldout_agreement_low"),
            "agreement_high": row.get("heldout_agreement_high")}


def qure_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """One sentence on how demo-qure compares with demo-contrastive on this page's headline agreement (held-out;
    "" when either lacks a score)."""
    by_name = {row["model"]: _headline(row) for row in rows}
    qure, contrastive = by_name.get(QURE), by_name.get(CONTRASTIVE)
    if not qure or not contrastive or qure.get("agreement") is None or contrastive.get("agreement") is None:
        return ""
    q, c = qure["agreement"], contrastive["agreement"]
    # Whether the paired test on the pairs both are judged on separates them (their ranks), not whether their
    # intervals overlap: overlapping intervals of models judged on the same pairs can still differ clearly.
    q_rank, c_rank = qure.get("rank"), contrastive.get("rank")
    separated = q_rank is not None and c_rank is not None and q_rank < c_rank
    if q > c:
        caveat = "" if separated else (
            "; the paired test on the pairs both are judged on does not separate them, so this run alone does not "
            "settle it"
        )
        return (
            f"As in the paper, {QURE} agrees with the simulated crowd more often than {CONTRASTIVE} "
            f"({q:.3f} vs {c:.3f}){caveat}."
        )
    return (
        f"Unlike in the paper, {QURE} does not agree with the simulated crowd more often than {CONTRASTIVE} "
        f"here ({q:.3f} vs {c:.3f})."
    )


def text_only_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """A sentence explaining the text-only baseline when it agrees with the crowd at least as often as one of the
    trained composed models ("" otherwise, or when a score is missing)."""
    by_name = {row["model"]: _headline(row) for row in rows}
    text = (by_name.get(TEXT_ONLY) or {}).get("agreement")
    composed = [(by_name.get(name) or {}).get("agreement") for name in (QURE, CONTRASTIVE)]
    known = [value for value in composed if value is not None]
    if text is None or len(known) < len(composed) or text < min(known):
        return ""
    return (
        f"{TEXT_ONLY} agrees with the crowd as often as a trained composed model here ({text:.3f}): the simulated "
        "annotators weigh the requested change twice as much as the rest of the reference, and the caption alone "
        "describes the change; its far lower Recall@10 shows what it misses."
    )


def demo_caption(*, benchmark: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The caption's data for a benchmark on the demo dataset, else None.

    ``{"recalls": [{"model", "r10", "r10_low", "r10_high", "r50", "r50_low", "r50_high"}, ...] (percent, rows'
    order, models with a finished run), "sentence": qure_sentence(rows) and text_only_sentence(rows)}``.
    """
    if benchmark.dataset.kind != Dataset.Kind.DEMO:
        return None
    recalls = _recalls(benchmark.dataset, [row["model_id"] for row in rows])
    return {
        "recalls": [{"model": row["model"]} | recalls[row["model_id"]] for row in rows if row["model_id"] in recalls],
        "sentence": " ".join(part for part in (qure_sentence(rows), text_only_sentence(rows)) if part),
    }
