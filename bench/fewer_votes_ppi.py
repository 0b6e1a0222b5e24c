"""Fewer human votes with a preference model: prediction-powered agreement, and pairs chosen where it is unsure.

The world, the crowd, the vote path's rules (adaptive overlap), the checkpoints and the "votes needed" criteria are
``bench/fewer_votes.py``'s (read its docstring); every strategy here runs on the same seeds' worlds with the same
pre-drawn votes, so strategies are paired per seed. New here:

- **The preference model** is ``models_zoo.preference``'s: a symmetric logistic regression without intercept on
  each scored model's set-score gap on the pair (scaled by its root mean square over every candidate, as the
  worker's ``gap_features``), fitted by ``fit_newton`` (the same optimum as the worker's torch fit, tested; L2 1.0
  here, where the worker picks it per fold by nested cross-validation) on the comparisons finished so far, with
  5-fold cross-fitting (folds by candidate): a finished comparison's prediction comes from the fit that did not see
  it, every other candidate's is the mean of the five fits' (cross-prediction); refitted every 100 finished
  comparisons (a comparison finished since the last fit, unseen by all five, gets their mean).
- **Prediction-powered agreement** (``hpbench.metrics.ppi.ppi_agreement``, PPI++): labelled = the finished
  comparisons, candidates = every candidate comparison; under informative selection the labelled pairs carry the
  rounds' design weights (``sequential_weights``).
- **Uncertain pairs**: informative selection (``annotate/selection.py``'s ``informative_draw``, same Poisson design
  and weights) with ``p̂`` the preference model's cross-prediction instead of the adaptive module's own fit.
- **Coverage**: at every checkpoint each estimator's 95% interval per model (classic: a normal interval of the
  (weighted) mean credit) is checked against the reference agreement; the share that cover, over checkpoints,
  models and seeds.

"Votes needed" is the first checkpoint from which both τ = 1 and every model within ±0.02 of the reference hold to
the end of the budget. Each strategy's figure against the baseline is the ratio of the mean votes needed, with a
95% paired bootstrap interval over seeds (seeds resampled, both strategies' votes of a seed kept together).

A run (100 seeds, --jobs 2, 28 minutes on 2 cores): the preference model's held-out agreement 0.786
(log-loss 0.453) against the best scored model's own 0.766; votes needed for τ = 1 and ±0.02 against fixed overlap 3
with random pairs (8,462): adaptive + random + classic 80% [77, 84], adaptive + informative + classic 65% [57, 74],
fixed 3 + random + PPI++ 67% [61, 74], adaptive + random + PPI++ 54% [48, 60], adaptive + uncertain pairs + PPI++
47% [40, 55] (15 of 100 seeds worse than the baseline); coverage 96.3-97.7% for every estimator.

    python bench/fewer_votes_ppi.py --jobs 2          # 100 seeds
    python bench/fewer_votes_ppi.py --seeds 4         # a quick look
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fewer_votes as fv  # noqa: E402

from hpbench.metrics.adaptive import weighted_agreement  # noqa: E402
from hpbench.metrics.ppi import ppi_agreement  # noqa: E402
from models_zoo.preference.features import gap_features, gap_scale  # noqa: E402
from models_zoo.preference.model import fit_newton  # noqa: E402

FOLDS = 5
REFIT = 100  # finished comparisons between refits of the preference model
Z = float(norm.ppf(0.975))
_features: dict[str, tuple[fv.World, np.ndarray]] = {}  # the world whose features they are


def features(world: fv.World) -> np.ndarray:
    """``(C, K)``, the worker's features (``gap_features``; no set shows a reference here): each scored model's
    set-score gap a minus b over its root mean square on every candidate (``gap_scale``)."""
    cached = _features.get("last")
    if cached is None or cached[0] is not world:  # one world at a time per process (an id may be reused)
        _features["last"] = (world, gap_features(world.score_diff / gap_scale(world.score_diff)[:, None]))
    return _features["last"][1]


def _fold_fits(x: np.ndarray, done: np.ndarray, verdicts: np.ndarray) -> np.ndarray:
    fold = done % FOLDS
    betas = np.zeros((FOLDS, x.shape[1]))
    for f in range(FOLDS):
        train = fold != f
        if train.sum() >= 2:
            betas[f] = fit_newton(x[done[train]], verdicts[train])
    return betas


_fits: dict[str, tuple[fv.World, np.ndarray, np.ndarray]] = {}  # the last fit: its world, the comparisons it saw
# and its fold coefficients


def cross_predictions(world: fv.World, done: np.ndarray, verdicts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ``p`` of the finished comparisons and the five fits' mean ``p`` on every candidate.

    The folds are refitted once ``REFIT`` comparisons finished since the last fit; until then a comparison that
    finished after it gets the mean of the five fits (none saw it), the others their out-of-fold fit's.
    """
    x = features(world)
    fitted, seen, betas = _fits.get("last", (None, np.zeros(0, dtype=np.int64), np.zeros((FOLDS, x.shape[1]))))
    if (fitted is not world or done.size - seen.size >= REFIT or seen.size > done.size
            or not np.array_equal(done[:seen.size], seen) or seen.size == 0):
        seen, betas = done.copy(), _fold_fits(x, done, verdicts)
        _fits["last"] = (world, seen, betas)
    p_folds = 1.0 / (1.0 + np.exp(-(x @ betas.T)))  # (C, FOLDS)
    p_all = p_folds.mean(axis=1)
    p_done = p_all[done].copy()
    p_done[: seen.size] = p_folds[seen, seen % FOLDS]
    return p_done, p_all


def ppi_estimator(world: fv.World, done: np.ndarray, verdicts: np.ndarray, w: np.ndarray):
    p_done, p_all = cross_predictions(world, done, verdicts)
    p_all = p_all.copy()
    p_all[done] = p_done  # as the platform: a labelled pair's prediction term is its out-of-fold one too
    human = np.where(verdicts, 1, 2)
    weights = None if np.allclose(w, w[0]) else w
    est, low, high = (np.empty(world.n_models) for _ in range(3))
    for k in range(world.n_models):
        choice_all = np.where(world.prefers_a[:, k], 1, 2)
        r = ppi_agreement(choice_all[done], human, p_done, choice_all, p_all, weights=weights)
        est[k], low[k], high[k] = r.value, r.lower, r.upper
    return est, low, high


def classic_estimator(world: fv.World, done: np.ndarray, verdicts: np.ndarray, w: np.ndarray):
    credit = (world.prefers_a[done] == verdicts[:, None]).astype(np.float64)  # (n, K)
    est = weighted_agreement(world.prefers_a[done], verdicts, w)
    wn = w / w.sum()
    if np.allclose(w, w[0]):
        se = credit.std(axis=0, ddof=1) / np.sqrt(done.size)
    else:
        se = np.sqrt(((wn[:, None] * (credit - est[None, :])) ** 2).sum(axis=0))
    return est, est - Z * se, est + Z * se


def uncertainty_predictor(world: fv.World, idx: np.ndarray, done: np.ndarray, verdicts: np.ndarray) -> np.ndarray:
    if done.size < 2 * FOLDS:
        return np.full(idx.size, 0.5)
    return cross_predictions(world, done, verdicts)[1][idx]


STRATEGIES = (
    fv.Strategy("fixed 3, random, classic (baseline)", adaptive=False, informative=False,
                estimator=classic_estimator),
    fv.Strategy("adaptive, random, classic", adaptive=True, informative=False, estimator=classic_estimator),
    fv.Strategy("adaptive, informative, classic", adaptive=True, informative=True, estimator=classic_estimator),
    fv.Strategy("fixed 3, random, PPI++", adaptive=False, informative=False, estimator=ppi_estimator),
    fv.Strategy("adaptive, random, PPI++", adaptive=True, informative=False, estimator=ppi_estimator),
    fv.Strategy("adaptive, uncertain pairs, PPI++", adaptive=True, informative=True, estimator=ppi_estimator,
                predictor=uncertainty_predictor),
)


def predictor_quality(world: fv.World, reference_verdicts: np.ndarray, seed: int, n_train: int) -> dict:
    """Held-out agreement of a preference model fitted on ``n_train`` random candidates' 3-vote verdicts, and the
    best scored model's own agreement on the same held-out candidates."""
    rng = np.random.default_rng(seed + 7)
    order = rng.permutation(world.maker_i.size)
    train, test = order[:n_train], order[n_train:]
    x = features(world)
    beta = fit_newton(x[train], reference_verdicts[train])
    p = 1.0 / (1.0 + np.exp(-(x[test] @ beta)))
    y = reference_verdicts[test]
    agree = float(np.mean((p > 0.5) == y))
    logloss = float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))
    best = float(max(np.mean(world.prefers_a[test, k] == y) for k in range(world.n_models)))
    return {"agreement": agree, "log_loss": logloss, "best_model": best}


def run_seed(seed: int, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, dict], dict]:
    world = fv.make_world(seed, args)
    majority = world.votes_a[:, : fv.FIXED_OVERLAP].sum(axis=1) * 2 > fv.FIXED_OVERLAP
    reference = weighted_agreement(world.prefers_a, majority, np.ones(majority.size))
    results = {s.name: fv.simulate(world, s, reference, args, seed) for s in STRATEGIES}
    return reference, results, predictor_quality(world, majority, seed, args.quality_train)


def paired_ratio(values: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Ratio of mean votes to the baseline's, and its 95% paired bootstrap interval over seeds."""
    idx = rng.integers(0, values.size, (4000, values.size))
    ratios = values[idx].mean(axis=1) / base[idx].mean(axis=1)
    return float(values.mean() / base.mean()), float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--annotators", type=int, default=60)
    parser.add_argument("--sensitivity", type=float, default=1.5)
    parser.add_argument("--budget", type=int, default=24_000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--window", type=int, default=40)
    parser.add_argument("--refresh", type=int, default=250)
    parser.add_argument("--min-votes", type=int, default=2)
    parser.add_argument("--max-votes", type=int, default=3)
    parser.add_argument("--confidence", type=float, default=0.8)
    parser.add_argument("--random-share", type=float, default=0.25)
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--quality-train", type=int, default=2000, help="Pairs the quality check trains on.")
    parser.add_argument("--min-labelled", type=int, default=200,
                        help="Coverage counts checkpoints with at least this many finished comparisons.")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            per_seed = pool.map(functools.partial(run_seed, args=args), range(args.seeds), chunksize=1)
    else:
        per_seed = [run_seed(seed, args) for seed in range(args.seeds)]
    elapsed = time.perf_counter() - started

    candidates = args.queries * args.models * (args.models - 1) // 2
    print(f"world: bench/fewer_votes.py's ({args.models} models, {candidates:,} candidate comparisons, "
          f"{args.annotators} annotators), {args.seeds} seeds, budget {args.budget:,} votes, tolerance "
          f"±{args.tolerance}")
    quality = {key: np.mean([q[key] for _, _, q in per_seed]) for key in ("agreement", "log_loss", "best_model")}
    print(f"preference model quality (trained on {args.quality_train:,} 3-vote verdicts, held-out candidates): "
          f"agreement {quality['agreement']:.3f}, log-loss {quality['log_loss']:.3f}; best scored model's own "
          f"agreement {quality['best_model']:.3f}")
    print()
    rng = np.random.default_rng(0)
    base_name = STRATEGIES[0].name
    header = (f"{'strategy':36} {'τ=1 votes':>9} {'±tol votes':>10} {'both: votes [95% CI]':>24} "
              f"{'vs baseline [paired 95%]':>26} {'worse':>5} {'cens':>4} {'coverage':>8}")
    print(header)
    print("-" * len(header))
    base = np.asarray([r[base_name]["both"][0] for _, r, _ in per_seed], dtype=np.float64)
    best = None
    for strategy in STRATEGIES:
        rows = [r[strategy.name] for _, r, _ in per_seed]
        tau = np.mean([x["tau1"][0] for x in rows])
        err = np.mean([x["err"][0] for x in rows])
        both = np.asarray([x["both"][0] for x in rows], dtype=np.float64)
        means = both[rng.integers(0, both.size, (4000, both.size))].mean(axis=1)
        ratio, lo, hi = paired_ratio(both, base, rng)
        worse = int(np.sum(both > base))
        censored = sum(x["both"][1] for x in rows)
        cover = [c for x in rows for n, c in x["covered"] if n >= args.min_labelled]
        coverage = float(np.concatenate(cover).mean()) if cover else float("nan")
        print(f"{strategy.name:36} {tau:>9,.0f} {err:>10,.0f} {both.mean():>8,.0f} "
              f"[{np.percentile(means, 2.5):>6,.0f}-{np.percentile(means, 97.5):>6,.0f}] "
              f"{ratio:>9.0%} [{lo:>5.0%}, {hi:>5.0%}]{'':>6} {worse:>5} {censored:>4} {coverage:>8.1%}")
        if strategy.name != base_name and (best is None or ratio < best[0]):
            best = (ratio, lo, hi, coverage, strategy.name)
    print()
    print("votes: mean over seeds of the first vote count from which the criterion holds to the end of the budget; "
          "worse: seeds where the strategy needed more than the baseline; cens: seeds never settled (counted as "
          "the budget); coverage: share of 95% intervals that cover the reference (checkpoints with >= "
          f"{args.min_labelled} finished comparisons x models x seeds)")
    print(f"elapsed {elapsed:.1f} s; best strategy: {best[4]}")
    print(f"best: {best[0]:.0%} of the baseline's votes [{best[1]:.0%}, {best[2]:.0%}], coverage {best[3]:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
