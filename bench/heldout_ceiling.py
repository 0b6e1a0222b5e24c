"""Held-out agreement and the leave-one-out ceiling on simulated campaigns where the truth is known.

Two figures, printed (no assertions; ``tests/metrics/test_heldout.py`` holds the checks):

1. **Own pairs.** Per query, ``--sets`` candidate sets have a true quality; each model scores them with its own
   noise and makes the one it scores highest (its top-k). A pair opposes two makers' sets (the makers on the
   board and a pool of set makers that is not); three people vote with P(set 1) = sigmoid(4 * quality gap). For
   each model: its agreement on all pairs, on its held-out pairs (neither set its own), and the truth (its
   agreement on 40,000 fresh pairs it made no set of).
2. **Collection strategy.** The same people's votes collected with fixed overlap 3 and with adaptive overlap (2 to
   3 votes, stop when decided at confidence 0.8): the mean shift of the leave-one-out ceiling and of the old ceiling
   (two annotators' agreement pooled over pairs of votes), against the ceiling's mean 95% half-width, over
   ``--reps`` benchmarks of ``--pairs`` pairs. Crowds: half clear pairs (95/5) and half contested (30-70%), and
   Beta(0.5, 0.5) / Beta(2, 2) preference strengths. For comparison, :func:`first_two_agreement`: an alternative
   (not on the platform) that does not move, at the cost of the majority units and of knowing the stopping rule.

    python bench/heldout_ceiling.py           # about 20 s
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpbench.metrics import heldout  # noqa: E402
from hpbench.metrics.adaptive import overlap_stop  # noqa: E402
from hpbench.metrics.reliability import pairwise_agreement  # noqa: E402


def _majority(votes: list[int]) -> int:
    a, b = votes.count(1), votes.count(2)
    return 1 if a > b else 2 if b > a else 0


def campaign(rng, *, n_pairs: int, makers: list[str], noise: dict[str, float], n_sets: int) -> list[tuple]:
    quality = rng.normal(size=(n_pairs, n_sets))
    scores = {m: quality + s * rng.normal(size=(n_pairs, n_sets)) for m, s in noise.items()}
    own = {m: scores[m].argmax(axis=1) for m in makers}
    rows = []
    for i in range(n_pairs):
        a, b = rng.choice(makers, size=2, replace=False)
        s1, s2 = own[a][i], own[b][i]
        if s1 == s2:
            continue
        p = 1 / (1 + math.exp(-4 * (quality[i, s1] - quality[i, s2])))
        verdict = _majority([1 if rng.random() < p else 2 for _ in range(3)])
        rows.append(([m for m in makers if own[m][i] == s1], [m for m in makers if own[m][i] == s2], verdict,
                     {m: 1 if scores[m][i, s1] > scores[m][i, s2] else 2 for m in noise}))
    return rows


def own_pairs(args) -> None:
    noise = {"maker-a": 0.6, "maker-b": 0.9, "maker-c": 1.2, "pool-1": 0.8, "pool-2": 1.0, "new": 0.9}
    makers = ["maker-a", "maker-b", "maker-c", "pool-1", "pool-2"]
    rng = np.random.default_rng(args.seed)
    bench = campaign(rng, n_pairs=args.campaign_pairs, makers=makers, noise=noise, n_sets=args.sets)
    fresh = campaign(rng, n_pairs=40000, makers=makers, noise=noise, n_sets=args.sets)
    ids = {m: i for i, m in enumerate(noise)}
    m1, m2 = [[ids[m] for m in r[0]] for r in bench], [[ids[m] for m in r[1]] for r in bench]
    human = np.array([r[2] for r in bench])
    print(f"own pairs: {len(bench)} pairs; pool-1 and pool-2 make sets, are not scored")
    print(f"{'model':10} {'all pairs':>10} {'held-out':>24} {'truth':>7}")
    for model in ["maker-a", "maker-b", "maker-c", "new"]:
        choices = np.array([r[3][model] for r in bench])
        every = heldout.agreement_figures(choices, human, rounds=200)
        held = heldout.agreement_figures(choices, human, mask=heldout.heldout_mask(m1, m2, ids[model]), rounds=200)
        kept = [r for r in fresh if model not in r[0] + r[1] and r[2]]
        truth = float(np.mean([r[3][model] == r[2] for r in kept]))
        print(f"{model:10} {every['value']:10.3f} {held['value']:7.3f} [{held['lower']:.3f}, {held['upper']:.3f}] "
              f"n={held['n']:<5} {truth:7.3f}")


def collect(rng, p: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    fixed = [[1 if rng.random() < q else 2 for _ in range(3)] for q in p]
    adaptive = []
    for stream in fixed:
        taken: list[int] = []
        for vote in stream:
            taken.append(vote)
            if overlap_stop(taken.count(1), taken.count(2), min_votes=2, max_votes=3, confidence=0.8):
                break
        adaptive.append(taken)
    return fixed, adaptive


def first_two_agreement(votes_by_pair: list[list[int]], *, adaptive: bool) -> float:
    """Not what the platform shows; an exactly unmoved alternative for comparison. The share of pairs whose first two
    votes agree, estimated per pair by the mean over the orders of its votes the collection could have produced
    (every order under fixed overlap; under adaptive overlap those whose shorter prefixes would not have stopped):
    given the counts all such orders are equally likely, so this is unbiased whatever the stopping rule."""
    from itertools import permutations

    values = []
    for votes in votes_by_pair:
        orders = set(permutations(votes))
        if adaptive:
            orders = {o for o in orders if all(
                overlap_stop(o[:n].count(1), o[:n].count(2), min_votes=2, max_votes=3, confidence=0.8) is None
                for n in range(1, len(o)))}
        values.append(np.mean([o[0] == o[1] for o in orders]))
    return float(np.mean(values))


def strategies(args) -> None:
    crowds = {
        "clear/contested": lambda r, n: np.where(r.random(n) < 0.5, r.choice([0.05, 0.95], n), r.uniform(0.3, 0.7, n)),
        "Beta(0.5, 0.5)": lambda r, n: r.beta(0.5, 0.5, n),
        "Beta(2, 2)": lambda r, n: r.beta(2, 2, n),
    }
    print(f"\ncollection strategy: {args.reps} benchmarks of {args.pairs} pairs, adaptive minus fixed")
    print(f"{'crowd':16} {'LOO ceiling':>12} {'shift':>7} {'half-width':>11} {'old ceiling':>12} {'shift':>7} "
          f"{'first two':>10} {'shift':>7}")
    for name, draw in crowds.items():
        rng = np.random.default_rng(args.seed)
        level, shift, half, old_level, old_shift, two_level, two_shift = [], [], [], [], [], [], []
        for _ in range(args.reps):
            fixed, adaptive = collect(rng, draw(rng, args.pairs))
            f, a = heldout.loo_ceiling(fixed, rounds=200), heldout.loo_ceiling(adaptive, rounds=200)
            level.append(f["value"])
            shift.append(a["value"] - f["value"])
            half.append((f["upper"] - f["lower"]) / 2)
            old_level.append(pairwise_agreement(fixed))
            old_shift.append(pairwise_agreement(adaptive) - pairwise_agreement(fixed))
            two_level.append(first_two_agreement(fixed, adaptive=False))
            two_shift.append(first_two_agreement(adaptive, adaptive=True) - two_level[-1])
        print(f"{name:16} {np.mean(level):12.3f} {np.mean(shift):+7.3f} {np.mean(half):11.3f} "
              f"{np.mean(old_level):12.3f} {np.mean(old_shift):+7.3f} {np.mean(two_level):10.3f} "
              f"{np.mean(two_shift):+7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--campaign-pairs", type=int, default=4000)
    parser.add_argument("--sets", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args()
    own_pairs(args)
    strategies(args)


if __name__ == "__main__":
    main()
