"""Held-out figures of the preference model against every CIR model's own choices (numpy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_EPS = 1e-6


def _credit(choice: np.ndarray, human_set1: np.ndarray) -> np.ndarray:
    return np.where(choice == 0, 0.5, ((choice == 1) == human_set1).astype(np.float64))


def _logloss(p: np.ndarray, human_set1: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return -np.where(human_set1, np.log(q), np.log(1 - q))


def calibrated_choice_probability(choices: ArrayLike, human_set1: ArrayLike, folds: ArrayLike) -> np.ndarray:
    """A CIR model's own score as a probability, cross-fitted: on a pair where it picks a set, the share of the
    other folds' pairs (where it picked one) on which people agreed with its pick; 0.5 where it ties."""
    c, h, f = np.asarray(choices), np.asarray(human_set1, dtype=bool), np.asarray(folds)
    out = np.full(c.size, 0.5)
    for fold in np.unique(f):
        train = (f != fold) & (c != 0)
        acc = float(np.mean((c[train] == 1) == h[train])) if train.any() else 0.5
        held = f == fold
        out[held & (c == 1)] = acc
        out[held & (c == 2)] = 1 - acc
    return out


def heldout_report(
    p_set1: ArrayLike,
    human_set1: ArrayLike,
    model_choices: dict[str, ArrayLike],
    folds: ArrayLike,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Held-out agreement and log-loss of the preference model (its out-of-fold ``p_set1``) and of each CIR model,
    on the same pairs (human ties dropped by the caller), with percentile bootstrap intervals over pairs; the
    preference model's margin over the best CIR model by agreement, and its log-loss gain over that model (the
    model's log-loss minus the preference model's: positive when the preference model is better), each with a
    paired interval.

    Returns ``{"preference_model": {"agreement": {value, lower, upper}, "log_loss": {...}}, "models": {name: same},
    "best_model": name, "margin_over_best": {value, lower, upper}, "log_loss_gain_over_best": {...}, "n_pairs",
    "rounds", "level"}``.
    """
    p = np.asarray(p_set1, dtype=np.float64)
    h = np.asarray(human_set1, dtype=bool)
    f = np.asarray(folds)
    if p.shape != h.shape or f.shape != h.shape or p.ndim != 1 or p.size == 0:
        raise ValueError("p_set1, human_set1 and folds must be non-empty 1-D arrays of one length")
    pm_choice = np.where(p > 0.5, 1, np.where(p < 0.5, 2, 0))
    per_pair = {"preference model": (_credit(pm_choice, h), _logloss(p, h))}
    for name, choices in model_choices.items():
        c = np.asarray(choices)
        if c.shape != h.shape:
            raise ValueError(f"choices of {name!r} have shape {c.shape}, expected {h.shape}")
        per_pair[name] = (_credit(c, h), _logloss(calibrated_choice_probability(c, h, f), h))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, h.size, (rounds, h.size))
    alpha = (1 - level) / 2

    def summary(values: np.ndarray) -> dict:
        boots = values[idx].mean(axis=1)
        lo, hi = np.quantile(boots, [alpha, 1 - alpha])
        return {"value": float(values.mean()), "lower": float(lo), "upper": float(hi)}

    figures = {name: {"agreement": summary(a), "log_loss": summary(ll)} for name, (a, ll) in per_pair.items()}
    report: dict = {"preference_model": figures.pop("preference model"), "models": figures,
                    "n_pairs": int(h.size), "rounds": rounds, "level": level,
                    "best_model": None, "margin_over_best": None, "log_loss_gain_over_best": None}
    if figures:
        best = max(figures, key=lambda name: figures[name]["agreement"]["value"])
        report["best_model"] = best
        report["margin_over_best"] = summary(per_pair["preference model"][0] - per_pair[best][0])
        report["log_loss_gain_over_best"] = summary(per_pair[best][1] - per_pair["preference model"][1])
    return report
