"""Bench: arena ratings (Bradley-Terry fit + bootstrap) on 1,000,000 synthetic votes among 20 models.

Goal (issue 6): fit + 1,000 bootstrap rounds in under 5 s on the 2-core CPU. Prints the wall time of each
stage and the largest |fitted - true| rating error (true ratings are centred on 1000 like the fit).

    .venv/bin/python bench/arena_ratings.py [--votes N] [--models M] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hpbench.metrics.arena import arena_ratings, win_probability  # noqa: E402


def synthetic_votes(
    n_votes: int, n_models: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Votes drawn from the Bradley-Terry model with known ratings (no ties, so the model is exact)."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 150.0, n_models)
    true += 1000.0 - true.mean()
    names = [f"model-{i:02d}" for i in range(n_models)]
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p = win_probability(true[a], true[b])
    outcome = (rng.random(n_votes) < p).astype(np.float64)
    label = np.array(names)
    return label[a], label[b], outcome, true, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model_a, model_b, outcome, true, names = synthetic_votes(args.votes, args.models, args.seed)
    t0 = time.perf_counter()
    rows = arena_ratings(model_a, model_b, outcome, rounds=args.rounds, seed=args.seed)
    elapsed = time.perf_counter() - t0

    fitted = {r["model"]: r for r in rows}
    errors = np.array([fitted[name]["rating"] - true[i] for i, name in enumerate(names)])
    covered = sum(fitted[name]["lower"] <= true[i] <= fitted[name]["upper"] for i, name in enumerate(names))
    width = np.mean([r["upper"] - r["lower"] for r in rows])
    print(f"votes={args.votes:,} models={args.models} bootstrap rounds={args.rounds}")
    print(f"arena_ratings (aggregate + BT fit + bootstrap): {elapsed:.2f} s (goal < 5 s)")
    print(f"max |fitted - true| rating error: {np.abs(errors).max():.2f} points")
    print(f"true rating inside the 95% interval: {covered}/{args.models}; mean interval width {width:.2f}")
    for r in rows[:3]:
        print(f"  {r}")


if __name__ == "__main__":
    main()
