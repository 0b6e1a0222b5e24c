"""A model's figures on a benchmark from its per-pair set scores and the human verdicts: preference ratio,
agreement and their bootstrap intervals, overall, per category and weighted by selection weight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BOOTSTRAP_ROUNDS = 1000


BOOTSTRAP_SEED = 0


def preference_figures(
    *, set1: Sequence[float] | np.ndarray, set2: Sequence[float] | np.ndarray, human: Sequence[int] | np.ndarray,
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
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
    *, set1: Sequence[float] | np.ndarray, set2: Sequence[float] | np.ndarray, human: Sequence[int],
    categories: Sequence[str], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict[str, Any]]:
    """:func:`preference_figures` on each category's pairs (the pair's own category, ``BenchmarkPair.category``:
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
    *, set1: Sequence[float] | np.ndarray, set2: Sequence[float] | np.ndarray, human: Sequence[int],
    weights: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
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
    def finite(x: float | np.ndarray) -> float | None:
        return None if x != x else float(x)  # nan: no pair with a human preference

    return {"agreement": finite(value), "agreement_low": finite(low), "agreement_high": finite(high)}
