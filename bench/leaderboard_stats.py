"""Bench: the leaderboard's new statistics at 1,000,000 votes and 50 models (issue 21).

A synthetic campaign benchmark: 333,334 comparisons, each between sets made by two of 50 models, with 3 votes each
(1M votes; the verdict is their majority), and every model's choice on every pair (models share which pairs are
hard, as real ones do). It times, in one process:

- baseline: the arena ratings as the leaderboard computed them before (Bradley-Terry + 1,000 bootstrap rounds that
  resample single votes);
- new: paired ranks on the pairs held out for each two models (``hpbench.metrics.paired``: differences, exact
  McNemar, Holm, ranks, and the 49 intervals of the gaps between adjacent rows), and the arena ratings whose
  bootstrap resamples comparisons; also the paired ranks of a weighted benchmark (selection weights 1/π).

Goal: the page's figures in under 2 s on 2 cores. The page caches them (per benchmark content and set of scores),
so this is the cost of a cache miss.

    .venv/bin/python bench/leaderboard_stats.py [--votes N] [--models M] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hpbench.metrics.arena import arena_ratings, win_probability  # noqa: E402
from hpbench.metrics.paired import difference_interval, paired_comparisons  # noqa: E402

VOTES_PER_COMPARISON = 3


def synthetic_benchmark(n_votes: int, n_models: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_pairs = -(-n_votes // VOTES_PER_COMPARISON)
    strength = rng.normal(0.0, 100.0, n_models)
    maker1 = rng.integers(0, n_models, n_pairs)
    maker2 = (maker1 + rng.integers(1, n_models, n_pairs)) % n_models
    p = win_probability(strength[maker1], strength[maker2])
    votes = rng.random((n_pairs, VOTES_PER_COMPARISON)) < p[:, None]  # True: set 1 won the vote
    human = np.where(votes.sum(axis=1) * 2 > VOTES_PER_COMPARISON, 1, 2).astype(np.int8)
    skill = np.clip(rng.normal(0.68, 0.03, n_models), 0.55, 0.8)
    difficulty = rng.random(n_pairs)  # shared: a pair hard for one model tends to be hard for all
    own_noise = rng.random((n_models, n_pairs))
    right = np.where(rng.random((n_models, n_pairs)) < 0.8, difficulty < skill[:, None], own_noise < skill[:, None])
    choices = np.where(right, human, 3 - human).astype(np.int8)
    flat = votes.ravel()[:n_votes]
    pair_of_vote = np.repeat(np.arange(n_pairs), VOTES_PER_COMPARISON)[:n_votes]
    names = np.array([str(1000 + m) for m in range(n_models)])  # as the selectors pass model ids
    return {
        "human": human, "choices": choices, "maker1": maker1, "maker2": maker2,
        "weights": rng.uniform(0.5, 3.0, n_pairs),
        "model_a": names[maker1[pair_of_vote]], "model_b": names[maker2[pair_of_vote]],
        "outcome": flat.astype(np.float64), "comparison": pair_of_vote,
    }


def paired_ranks(data: dict[str, np.ndarray], *, weighted: bool) -> np.ndarray:
    """What the leaderboard computes on a cache miss: held-out masks, every comparison, the adjacent intervals."""
    m = data["choices"].shape[0]
    models = np.arange(m)[:, None]
    usable = (data["maker1"][None, :] != models) & (data["maker2"][None, :] != models)
    result = paired_comparisons(data["choices"], data["human"], usable=usable,
                                weights=data["weights"] if weighted else None)
    credit = (data["choices"] == data["human"]).mean(axis=1)
    order = np.argsort(-credit)
    for above, below in zip(order[:-1], order[1:], strict=True):
        difference_interval(result, int(above), int(below))
    return result.rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = synthetic_benchmark(args.votes, args.models, args.seed)
    n_pairs = data["human"].size
    print(f"votes={args.votes:,} comparisons={n_pairs:,} models={args.models} bootstrap rounds={args.rounds} "
          f"cpus={os.cpu_count()} load average={os.getloadavg()[0]:.1f}")
    timings: dict[str, tuple[float, float]] = {}  # label -> (wall s, CPU s of this process)

    def timed(label: str, run) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        out = run()
        timings[label] = (time.perf_counter() - wall, time.process_time() - cpu)
        return out

    timed("baseline: arena, bootstrap over votes", lambda: arena_ratings(
        data["model_a"], data["model_b"], data["outcome"], rounds=args.rounds, seed=args.seed))
    ranks = timed("new: paired ranks on held-out pairs", lambda: paired_ranks(data, weighted=False))
    timed("new: arena, bootstrap over comparisons", lambda: arena_ratings(
        data["model_a"], data["model_b"], data["outcome"], clusters=data["comparison"], rounds=args.rounds,
        seed=args.seed))
    timed("paired ranks, weighted benchmark", lambda: paired_ranks(data, weighted=True))

    print(f"{'':45s} {'wall':>8s} {'CPU':>8s}")
    for label, (wall, cpu) in timings.items():
        print(f"{label:45s} {wall:7.2f}s {cpu:7.2f}s")
    parts = ("new: paired ranks on held-out pairs", "new: arena, bootstrap over comparisons")
    new = [sum(timings[p][k] for p in parts) for k in (0, 1)]
    base = timings["baseline: arena, bootstrap over votes"]
    print(f"{'new total (paired ranks + arena over comparisons)':45s} {new[0]:7.2f}s {new[1]:7.2f}s")
    print(f"ratio new / arena-only baseline: {new[0] / base[0]:.2f} (wall), {new[1] / base[1]:.2f} (CPU); "
          "goal: the page's figures < 2 s on 2 cores")
    assert isinstance(ranks, np.ndarray)
    print(f"distinct ranks among {args.models} models: {len(set(ranks.tolist()))}; best rank shared by "
          f"{int((ranks == 1).sum())}")


if __name__ == "__main__":
    main()
