"""A model's figures on a benchmark from its per-pair set scores and the human verdicts: preference ratio,
agreement and their bootstrap intervals, overall and per category, weighted by the design weights of
informative pair selection where a benchmark has them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BOOTSTRAP_ROUNDS = 1000


BOOTSTRAP_SEED = 0


def preference_figures(
    *, set1: Sequence[float] | np.ndarray, set2: Sequence[float] | np.ndarray, human: Sequence[int] | np.ndarray,
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED, weights: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Preference ratio (QuRe Eq. 9), agreement (symmetric, model tie = 0.5, human ties excluded) and their
    95% bootstrap intervals over pairs, from per-pair set scores and human verdicts (1, 2, 0 = tie).

    With ``weights`` (informative pair selection's design weights) every figure is the weighted (Hajek) one
    (:func:`hpbench.metrics.preference.preference_summary`); the counts stay counts of pairs."""
    from hpbench.metrics import preference

    summary = preference.preference_summary(set1, set2, human, rounds=rounds, seed=seed, weights=weights)
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
    weights: Sequence[float] | np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`preference_figures` on each category's pairs (the pair's own category, ``BenchmarkPair.category``:
    FashionIQ's dress, shirt, toptee): ``{category: {"agreement", "agreement_low", "agreement_high",
    "preference_ratio", "n_pairs"}}``, weighted by ``weights`` when given (domain estimates of the same design).
    Pairs without a category are left out; ``{}`` when fewer than two categories have pairs (one category's
    figures are the overall ones)."""
    groups: dict[str, list[int]] = {}
    for position, category in enumerate(categories):
        if category:
            groups.setdefault(category, []).append(position)
    if len(groups) < 2:
        return {}
    s1, s2, h = np.asarray(set1, dtype=float), np.asarray(set2, dtype=float), np.asarray(human)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    out: dict[str, dict[str, Any]] = {}
    for category, positions in sorted(groups.items()):
        figures = preference_figures(set1=s1[positions], set2=s2[positions], human=h[positions], rounds=rounds,
                                     seed=seed, weights=None if w is None else w[positions])
        out[category] = {key: figures[key] for key in
                         ("agreement", "agreement_low", "agreement_high", "preference_ratio", "n_pairs")}
    return out


def vote_codes(votes: Sequence[dict]) -> list[int]:
    """A stored pair's votes (``BenchmarkPair.votes``) as choice codes 1, 2, 0 (tie)."""
    return [int(v["choice"]) for v in votes]


def benchmark_ceiling_figures(
    *, human: Sequence[int], votes_by_pair: Sequence[Sequence[int]], weights: Sequence[float],
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """A benchmark's leave-one-out human ceiling with its interval, and its preference ratio's chance level
    (:mod:`hpbench.metrics.heldout`), as ``PreferenceBenchmark`` field values."""
    from hpbench.metrics import heldout

    ceiling = heldout.loo_ceiling(votes_by_pair, weights=weights, rounds=rounds, seed=seed)
    return {
        "ceiling_loo": ceiling["value"],
        "ceiling_loo_low": ceiling["lower"],
        "ceiling_loo_high": ceiling["upper"],
        "ceiling_loo_pairs": ceiling["pairs"],
        "preference_ratio_chance": heldout.preference_ratio_chance(human),
    }


def heldout_figures(
    *, model_id: int, choices: Sequence[int] | np.ndarray, human: Sequence[int], weights: Sequence[float],
    makers1: Sequence[Sequence[int]], makers2: Sequence[Sequence[int]], votes_by_pair: Sequence[Sequence[int]],
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """A model's held-out agreement (pairs where it made neither set; weighted by selection weight) and its
    agreement with the leave-one-out majorities on those pairs, as ``ModelScore`` field values."""
    from hpbench.metrics import heldout

    mask = heldout.heldout_mask(makers1, makers2, model_id)
    agree = heldout.agreement_figures(choices, human, weights=weights, mask=mask, rounds=rounds, seed=seed)
    loo = heldout.loo_model_agreement(choices, votes_by_pair, weights=weights, mask=mask, rounds=rounds, seed=seed)
    return {
        "heldout_agreement": agree["value"],
        "heldout_agreement_low": agree["lower"],
        "heldout_agreement_high": agree["upper"],
        "heldout_n_pairs": agree["n"],
        "loo_agreement": loo["value"],
        "loo_agreement_low": loo["lower"],
        "loo_agreement_high": loo["upper"],
    }
