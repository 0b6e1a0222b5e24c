"""How many human votes each campaign strategy needs for the answer a very large fixed-overlap budget gives.

A simulated world, no server: ``--models`` models each make one 5-image set per query with a latent quality
(model strength + per-query spread); the same models score every set with their own noise, so each has a true
agreement with people. A crowd of ``--annotators`` people votes on a comparison of two sets with a per-person
lapse rate (random answer), a per-person bias towards the left position (placements are random) and a common
sensitivity to the quality gap. Every candidate comparison (query x pair of models) gets its own pre-drawn
sequence of votes, shared by all strategies (common random numbers).

The reference is fixed overlap 3 on every candidate comparison (``--queries`` x pairs: 30,000 comparisons,
90,000 votes by default): each model's agreement with the 3-vote majorities, and the ranking by agreement
(the leaderboard's default order). Each strategy then spends votes with ``--window`` comparisons open at a
time, as a live campaign does; every ``--every`` votes the comparisons it has finished give each model's
agreement estimate (under informative selection weighted by the design weights of the Poisson rounds drawn so
far, :func:`hpbench.metrics.adaptive.sequential_weights`).
"Votes needed" for a criterion is the first checkpoint from which the criterion holds at every later one up to
``--budget`` (a run that never settles counts as the budget and is reported as censored).

Strategies: fixed overlap 3 + random pairs (today's campaigns, the baseline), adaptive overlap (min 2, max 3,
confidence 0.8) + random pairs, fixed overlap 3 + informative pairs, and both together.

What the platform runs: adaptive overlap is the vote path's rule (``annotate/services/votes.py``, the same
``overlap_stop``); informative pairs are ``annotate/selection.py``'s draw (``informative_draw``) on the same
inputs: the scored models' set-score gaps standardised over the remaining candidates and the decided comparisons,
Bradley-Terry strengths and the predicted-preference fit from the finished comparisons. ``--refresh`` comparisons
are drawn each time the queue runs dry: the campaign's build, then ``campaign_refresh --count N``. Two differences
remain: here every scored model scores every set exactly
(the platform reads each model's stored top-K, an image outside it counting as its K-th score), and random pairs
may repeat a query with another model pair (the platform's random build uses each query once).

    python bench/fewer_votes.py               # 20 seeds, about 2 minutes on 2 cores
    python bench/fewer_votes.py --seeds 3     # a quick look
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hpbench.metrics.adaptive import (  # noqa: E402
    bt_strengths,
    informative_draw,
    overlap_stop,
    predicted_preference,
    score_evidence,
    scorer_disagreement,
    sequential_weights,
    weighted_agreement,
)

FIXED_OVERLAP = 3


@dataclass(frozen=True)
class World:
    """Candidates ``c`` = (query, model i, model j); votes ``votes_a[c, v]`` is the v-th vote for set a (i's)."""

    maker_i: np.ndarray  # (C,)
    maker_j: np.ndarray  # (C,)
    prefers_a: np.ndarray  # (C, K) scored model k scores set a (model i's) higher
    score_diff: np.ndarray  # (K, C) scored model k's set-score difference, a minus b
    votes_a: np.ndarray  # (C, V) bool
    n_models: int


@dataclass(frozen=True)
class Strategy:
    """``estimator`` (None: the classic weighted agreement) returns ``(estimate, lower, upper)`` per model from
    ``(world, finished comparisons, their verdicts, their design weights)``; ``predictor`` (None: the adaptive
    module's predicted preference) gives informative selection its ``p̂`` from ``(world, candidates, finished
    comparisons, their verdicts)``. Both are ``bench/fewer_votes_ppi.py``'s."""

    name: str
    adaptive: bool
    informative: bool
    estimator: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    predictor: Callable[..., np.ndarray] | None = None


STRATEGIES = (
    Strategy("fixed overlap 3, random pairs (baseline)", adaptive=False, informative=False),
    Strategy("adaptive overlap, random pairs", adaptive=True, informative=False),
    Strategy("fixed overlap 3, informative pairs", adaptive=False, informative=True),
    Strategy("adaptive overlap + informative pairs", adaptive=True, informative=True),
)


def make_world(seed: int, args: argparse.Namespace) -> World:
    rng = np.random.default_rng(seed)
    m, q = args.models, args.queries
    strength = np.linspace(-0.4, 0.4, m)
    quality = strength[None, :] + rng.normal(0.0, 1.0, (q, m))  # (Q, M) set quality of model m's set
    scorer_noise = rng.permutation(np.linspace(0.5, 1.6, m))
    scores = quality[None, :, :] + scorer_noise[:, None, None] * rng.normal(0.0, 1.0, (m, q, m))  # (K, Q, M)
    ii, jj = np.triu_indices(m, k=1)
    cq = np.repeat(np.arange(q), ii.size)
    ci, cj = np.tile(ii, q), np.tile(jj, q)
    score_diff = scores[:, cq, ci] - scores[:, cq, cj]
    prefers_a = score_diff.T > 0
    # The crowd.
    lapse = rng.uniform(0.02, 0.3, args.annotators)
    bias = rng.normal(0.0, 0.5, args.annotators)
    n_votes = max(args.max_votes, FIXED_OVERLAP)
    who = rng.integers(0, args.annotators, (ci.size, n_votes))
    left_is_a = rng.random((ci.size, n_votes)) < 0.5
    gap = (quality[cq, ci] - quality[cq, cj])[:, None]
    gap_left = np.where(left_is_a, gap, -gap)
    p_left = lapse[who] / 2 + (1 - lapse[who]) * expit(args.sensitivity * gap_left + bias[who])
    chose_left = rng.random(p_left.shape) < p_left
    return World(ci, cj, prefers_a, score_diff, chose_left == left_is_a, m)


def ranking(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(-values, kind="stable"), kind="stable")


def _bt_gap(world: World, done: list[int], done_wins: list[int], counts: dict[int, int]) -> np.ndarray:
    """Natural-log Bradley-Terry strengths of the set makers from the votes of finished comparisons."""
    d = np.asarray(done, dtype=np.int64)
    k = np.asarray([counts[c] for c in done], dtype=np.float64)
    return bt_strengths(world.maker_i[d], world.maker_j[d], done_wins, k, world.n_models)


def simulate(world: World, strategy: Strategy, reference: np.ndarray, args: argparse.Namespace, seed: int) -> dict:
    """Spend ``args.budget`` votes; return the votes at which each criterion settles, and the vote split."""
    rng = np.random.default_rng(seed + 1_000_003)
    n = world.maker_i.size
    ref_rank = ranking(reference)
    remaining = np.ones(n, dtype=bool)
    queue: list[tuple[int, float]] = []
    order = rng.permutation(n)
    next_random = 0
    counts: dict[int, int] = {}
    active: list[int] = []
    weights: dict[int, float] = {}  # informative: each comparison's π in its round; random: 1
    done: list[int] = []
    done_wins: list[int] = []  # votes for a of each finished comparison, in ``done`` order
    verdict: dict[int, bool] = {}
    stop_cache: dict[tuple[int, int], str | None] = {}
    rating = np.zeros(world.n_models)
    sizes: list[int] = []  # informative rounds' expected counts
    round_of: dict[int, int] = {}
    checkpoints: list[tuple[int, float, float]] = []
    covered: list[tuple[int, np.ndarray]] = []  # with an estimator: (finished comparisons, which models are covered)
    max_votes = args.max_votes if strategy.adaptive else FIXED_OVERLAP

    def refill_queue() -> None:
        nonlocal rating, next_random
        if not strategy.informative:
            while next_random < n and len(queue) < args.refresh:
                c = int(order[next_random])
                next_random += 1
                queue.append((c, 1.0))
            return
        idx = np.flatnonzero(remaining)
        if idx.size == 0:
            return
        # As annotate/selection.py: the score gaps are standardised over the candidates and the decided comparisons.
        d = np.asarray(done, dtype=np.int64)
        gap, _ = score_evidence(world.score_diff[:, np.concatenate([idx, d])])
        if done:
            rating = _bt_gap(world, done, done_wins, counts)
            fit = dict(fit_gap=gap[idx.size:], fit_rating=rating[world.maker_i[d]] - rating[world.maker_j[d]],
                       fit_outcome=np.asarray([verdict[c] for c in done], dtype=np.float64))
        else:
            fit = {}
        if strategy.predictor is not None:
            p_hat = strategy.predictor(world, idx, d, np.asarray([verdict[c] for c in done], dtype=bool))
        else:
            p_hat = predicted_preference(gap[:idx.size], rating[world.maker_i[idx]] - rating[world.maker_j[idx]],
                                         **fit)
        picks, pi = informative_draw(p_hat, scorer_disagreement(world.prefers_a[idx]), take=args.refresh,
                                     random_share=args.random_share, rng=rng)
        sizes.append(min(args.refresh, idx.size))  # the round's expected count
        order_in_round = rng.permutation(picks.size)  # served in random order, as the platform's positions are
        for p in order_in_round:
            c = int(idx[picks[p]])
            round_of[c] = len(sizes)
            queue.append((c, float(pi[p])))
        remaining[idx[picks]] = False

    votes = 0
    spent_on_done = 0
    while votes < args.budget:
        while len(active) < args.window:
            if not queue:
                refill_queue()
                if not queue:
                    break
            c, w = queue.pop(0)
            remaining[c] = False
            weights[c] = w
            counts[c] = 0
            active.append(c)
        if not active:
            break
        slot = int(rng.integers(len(active)))
        c = active[slot]
        counts[c] += 1
        votes += 1
        k = counts[c]
        a = int(world.votes_a[c, :k].sum())
        if strategy.adaptive:
            key = (a, k - a)
            if key not in stop_cache:
                stop_cache[key] = overlap_stop(a, k - a, min_votes=args.min_votes, max_votes=max_votes,
                                               confidence=args.confidence)
            stop = stop_cache[key]
        else:
            stop = "max_votes" if k >= FIXED_OVERLAP else None
        if stop is not None:
            active[slot] = active[-1]
            active.pop()
            spent_on_done += k
            if 2 * a != k:  # an even split at the maximum is a human tie: left out of agreement
                done.append(c)
                done_wins.append(a)
                verdict[c] = 2 * a > k
        if votes % args.every == 0 and len(done) >= 20:
            d = np.asarray(done)
            if strategy.informative:  # the design weights of the rounds drawn so far (π stored per comparison)
                w = sequential_weights(population=n, round_sizes=sizes, round_of=[round_of[x] for x in done],
                                       pi=[weights[x] for x in done])
            else:
                w = np.ones(d.size)
            if strategy.estimator is None:
                est = weighted_agreement(world.prefers_a[d], np.asarray([verdict[x] for x in done]), w)
            else:
                est, low, high = strategy.estimator(world, d, np.asarray([verdict[x] for x in done]), w)
                covered.append((d.size, (low <= reference) & (reference <= high)))
            tau = kendalltau(ranking(est), ref_rank).statistic
            checkpoints.append((votes, float(tau), float(np.abs(est - reference).max())))

    def settled(ok: list[bool]) -> tuple[int, bool]:
        """First checkpoint from which ``ok`` holds to the end; (budget, censored) when it never settles."""
        if not ok or not ok[-1]:
            return args.budget, True
        i = len(ok)
        while i > 0 and ok[i - 1]:
            i -= 1
        return checkpoints[i][0], False

    taus = [t for _, t, _ in checkpoints]
    errs = [e for _, _, e in checkpoints]
    return {
        "tau1": settled([t >= 1 - 1e-12 for t in taus]),
        "tau09": settled([t >= 0.9 - 1e-12 for t in taus]),
        "err": settled([e <= args.tolerance for e in errs]),
        "both": settled([t >= 1 - 1e-12 and e <= args.tolerance for t, e in zip(taus, errs, strict=True)]),
        "votes_per_comparison": spent_on_done / max(1, len(counts) - len(active)),
        "covered": covered,
    }


def interval(values: list[float], rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean and a 95% percentile bootstrap interval of the mean over seeds."""
    x = np.asarray(values, dtype=np.float64)
    means = x[rng.integers(0, x.size, (2000, x.size))].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_seed(seed: int, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, dict]]:
    """One seed's world: the reference agreements and every strategy's result."""
    world = make_world(seed, args)
    majority = world.votes_a[:, :FIXED_OVERLAP].sum(axis=1) * 2 > FIXED_OVERLAP
    reference = weighted_agreement(world.prefers_a, majority, np.ones(majority.size))
    return reference, {s.name: simulate(world, s, reference, args, seed) for s in STRATEGIES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--annotators", type=int, default=60)
    parser.add_argument("--sensitivity", type=float, default=1.5, help="People's sensitivity to the quality gap.")
    parser.add_argument("--budget", type=int, default=24_000, help="Votes each strategy may spend per seed.")
    parser.add_argument("--every", type=int, default=100, help="Votes between checkpoints.")
    parser.add_argument("--window", type=int, default=40, help="Comparisons open at once.")
    parser.add_argument("--refresh", type=int, default=250, help="Comparisons drawn per selection refresh.")
    parser.add_argument("--min-votes", type=int, default=2)
    parser.add_argument("--max-votes", type=int, default=3)
    parser.add_argument("--confidence", type=float, default=0.8)
    parser.add_argument("--random-share", type=float, default=0.25)
    parser.add_argument("--jobs", type=int, default=1, help="Seeds simulated in parallel processes.")
    parser.add_argument("--tolerance", type=float, default=0.02, help="Agreement error allowed per model.")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    results: dict[str, list[dict]] = {s.name: [] for s in STRATEGIES}
    references = []
    seeds = range(args.seeds)
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            per_seed = pool.map(functools.partial(run_seed, args=args), seeds, chunksize=1)
    else:
        per_seed = [run_seed(seed, args) for seed in seeds]
    for reference, by_strategy in per_seed:  # in seed order, whatever ran where
        references.append(reference)
        for name, result in by_strategy.items():
            results[name].append(result)
    elapsed = time.perf_counter() - started

    ref = np.asarray(references)
    gaps = np.diff(np.sort(ref, axis=1), axis=1)
    candidates = args.queries * args.models * (args.models - 1) // 2
    print(f"world: {args.models} models, {args.queries} queries ({candidates:,} candidate comparisons), "
          f"{args.annotators} annotators, {args.seeds} seeds, budget {args.budget:,} votes")
    print(f"reference agreements (fixed overlap 3 on every comparison): {ref.min():.3f}..{ref.max():.3f}, "
          f"closest two models {gaps.min(axis=1).mean():.3f} apart on average")
    print(f"adaptive overlap: min {args.min_votes}, max {args.max_votes}, confidence {args.confidence}; informative "
          f"pairs: {args.random_share:.0%} uniform, refreshed every {args.refresh} comparisons; tolerance "
          f"±{args.tolerance}")
    print()
    rng = np.random.default_rng(0)
    columns = (("tau1", "tau = 1"), ("tau09", "tau >= 0.9"), ("err", f"±{args.tolerance}"), ("both", "tau=1 & ±tol"))
    header = f"{'strategy':42} {'votes/cmp':>9} " + " ".join(f"{title:>24}" for _, title in columns) + "  vs baseline"
    print(header)
    print("-" * len(header))
    baseline = None
    for strategy in STRATEGIES:
        rows = results[strategy.name]
        cells = []
        for key, _ in columns:
            mean, lo, hi = interval([r[key][0] for r in rows], rng)
            censored = sum(r[key][1] for r in rows)
            mark = f"*{censored}" if censored else ""
            cells.append(f"{mean:>8,.0f} [{lo:>6,.0f}-{hi:>6,.0f}]{mark:<3}")
        both = float(np.mean([r["both"][0] for r in rows]))
        baseline = both if baseline is None else baseline
        vpc = float(np.mean([r["votes_per_comparison"] for r in rows]))
        print(f"{strategy.name:42} {vpc:>9.2f} " + " ".join(f"{c:>24}" for c in cells) + f"  {both / baseline:>6.0%}")
    print()
    print("votes needed: mean over seeds [95% bootstrap interval of the mean]; *N = N seeds never settled within the "
          "budget (counted as the budget)")
    print(f"elapsed {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
