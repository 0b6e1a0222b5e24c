"""Bradley-Terry arena ratings with Chatbot Arena's conventions.

Model
    Each model has a strength ``theta`` (log10 units); ``P(A beats B) = 1 / (1 + 10 ** (theta_B - theta_A))``.
    Ratings are ``400 * theta + 1000``, so ``P(A beats B) = 1 / (1 + 10 ** ((R_B - R_A) / 400))``
    (:func:`win_probability`). A game's outcome is A's score: 1 (A won), 0 (B won), 0.5 (tie), so a tie counts
    as half a win for each side, as the Arena notebook's duplicated-row construction and lmarena's ``fit_bt``
    both do.

Fit (as lmarena's ``compute_bt`` / ``fit_bt``)
    Votes are reduced to COUNTS of unique (model A, model B, outcome) rows (pairs put in a canonical order,
    which leaves the likelihood unchanged). ``theta`` minimises the mean negative log-likelihood per vote
    ``-(1/V) sum_rows count * (y log p + (1 - y) log(1 - p))`` plus ``(l2 / 2) * ||theta||^2``, by L-BFGS
    with the analytic gradient, polished with Newton steps. The tiny default ``l2 = 1e-6`` keeps the optimum
    finite when a model has only wins (or only losses) and anchors the ratings: at the optimum
    ``sum(theta) = 0``, i.e. the ratings average 1000. With ``l2 = 0`` the mean is anchored at 0 explicitly
    (the likelihood does not depend on it); that needs a connected comparison graph and no undefeated or
    winless model.

Intervals (as lmarena's ``compute_bootstrap_bt``)
    Multinomial bootstrap over the unique rows: each round draws counts ``rng.multinomial(V, counts / V)``
    (``rng = numpy.random.default_rng(seed)``) and refits from the point estimate (all rounds at once with
    batched Newton steps). With ``clusters`` (the comparison each vote was cast on) each round instead
    resamples whole comparisons with replacement (a multinomial over the distinct comparison contents): votes
    on one comparison are correlated, and resampling them one by one gives intervals that are too narrow.
    ``lower``/``upper`` are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of each model's bootstrap
    ratings; ``rating`` is the point estimate. ``rank`` = 1 + the number of models whose ``lower`` is above this
    model's ``upper``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
ALPHA = math.log(BASE)  # logits are ALPHA * (theta_A - theta_B)

_OUTCOME_NAMES = {"a": 1.0, "model_a": 1.0, "b": 0.0, "model_b": 0.0, "tie": 0.5}


def win_probability(rating_a: ArrayLike, rating_b: ArrayLike) -> float | np.ndarray:
    """``P(A beats B) = 1 / (1 + 10 ** ((R_B - R_A) / 400))`` on the rating scale."""
    p = 1.0 / (1.0 + np.power(BASE, (np.asarray(rating_b, float) - np.asarray(rating_a, float)) / SCALE))
    return float(p) if np.ndim(p) == 0 else p


# --------------------------------------------------------------------------------------------------------
# Fitting on unique rows
# --------------------------------------------------------------------------------------------------------


def bt_loss_and_grad(
    theta: np.ndarray, matchups: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (weights summing to 1) + ``l2/2 ||theta||^2`` and its gradient.

    ``matchups`` ``(R, 2)`` model indices (A, B); ``outcomes`` ``(R,)`` A's score; ``weights`` ``(R,)``.
    """
    logits = ALPHA * (theta[matchups[:, 0]] - theta[matchups[:, 1]])
    loss = -float(np.dot(weights, outcomes * log_expit(logits) + (1.0 - outcomes) * log_expit(-logits)))
    loss += 0.5 * l2 * float(np.dot(theta, theta))
    g_row = ALPHA * weights * (expit(logits) - outcomes)
    grad = np.bincount(matchups[:, 0], g_row, theta.size) - np.bincount(matchups[:, 1], g_row, theta.size)
    return loss, grad + l2 * theta


class _Design:
    """Dense helpers for batched Newton steps over many weight vectors at once.

    All rows of one (unordered) model pair share a logit, so a batch of row weights is first reduced to each model
    pair's total weight ``t`` and the lower-indexed model's score ``s`` (:meth:`reduce`); the likelihood is then
    ``sum_pairs s log p + (t - s) log (1 - p)`` and everything is computed per model pair, not per row.
    """

    def __init__(self, matchups: np.ndarray, n_models: int) -> None:
        r = matchups.shape[0]
        a, b = matchups[:, 0], matchups[:, 1]
        self.n = n_models
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        pairs, row_pair = np.unique(lo * n_models + hi, return_inverse=True)
        self.flipped = a > b  # the row's A is the pair's higher-indexed model
        self.row_to_pair = csr_matrix((np.ones(r), (row_pair.ravel(), np.arange(r))), shape=(pairs.size, r))
        p_lo, p_hi = np.divmod(pairs, n_models)
        self.incidence = np.zeros((pairs.size, n_models))  # +1 for the lower-indexed model, -1 for the other
        self.incidence[np.arange(pairs.size), p_lo] = 1.0
        self.incidence[np.arange(pairs.size), p_hi] = -1.0
        self.off_diagonal = np.concatenate([p_lo * n_models + p_hi, p_hi * n_models + p_lo])
        self.pair_ends = np.abs(self.incidence)  # each pair adds its total to both ends' diagonal
        self.diagonal = np.arange(n_models) * (n_models + 1)

    def reduce(self, outcomes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row weights ``(B, R)`` -> per model pair: the lower-indexed model's score ``s`` and the total ``t``."""
        score = np.where(self.flipped, 1.0 - outcomes, outcomes)
        s = np.asarray((self.row_to_pair @ (weights * score).T).T)
        t = np.asarray((self.row_to_pair @ weights.T).T)
        return s, t

    def loss_grad_hess(
        self, theta: np.ndarray, s: np.ndarray, t: np.ndarray, l2: float, *, hessian: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """For ``theta`` ``(B, M)`` and per-pair ``s``, ``t`` ``(B, pairs)``: losses ``(B,)``, gradients, Hessians."""
        logits = ALPHA * (theta @ self.incidence.T)
        # s log p + (t - s) log(1 - p), with log(1 - p) = log p - logit: one log_expit, the costly part
        loss = -np.sum(t * log_expit(logits) - (t - s) * logits, axis=1)
        loss += 0.5 * l2 * np.sum(theta * theta, axis=1)
        p = expit(logits)
        grad = (ALPHA * (t * p - s)) @ self.incidence + l2 * theta
        if not hessian:
            return loss, grad, None
        per_pair = ((ALPHA * ALPHA) * t * p * (1.0 - p)).T  # (pairs, B): whole rows are cheap to scatter
        flat = np.zeros((self.n * self.n, theta.shape[0]))
        flat[self.off_diagonal] = -np.concatenate([per_pair, per_pair])
        flat[self.diagonal] = self.pair_ends.T @ per_pair
        hess = flat.reshape(self.n, self.n, -1).transpose(2, 0, 1)
        # + 11^T / n makes the matrix invertible without l2; since the gradient sums to zero at mean-zero
        # theta, the step then has no component along 11^T and is the exact Newton step.
        hess += l2 * np.eye(self.n) + np.full((self.n, self.n), 1.0 / self.n)
        return loss, grad, hess


def _newton(
    design: _Design,
    theta: np.ndarray,
    outcomes: np.ndarray,
    weights: np.ndarray,
    l2: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Damped batched Newton from ``theta`` ``(B, M)``; returns ``(theta, converged (B,))``."""
    theta = theta.copy()
    s_all, t_all = design.reduce(outcomes, weights)
    active = np.arange(theta.shape[0])
    converged = np.zeros(theta.shape[0], dtype=bool)
    for _ in range(max_iter):
        s, t_pair = s_all[active], t_all[active]
        loss, grad, hess = design.loss_grad_hess(theta[active], s, t_pair, l2)
        assert hess is not None  # asked for (hessian=True)
        done = np.abs(grad).max(axis=1) < tol
        converged[active[done]] = True
        keep = ~done
        active, loss, grad, hess = active[keep], loss[keep], grad[keep], hess[keep]
        s, t_pair = s[keep], t_pair[keep]
        if active.size == 0:
            break
        try:
            step = np.linalg.solve(hess, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a singular round (only possible with l2 = 0)
            step = (np.linalg.pinv(hess) @ grad[..., None])[..., 0]
        decrement = np.sum(grad * step, axis=1)  # Newton decrement squared: the predicted decrease x 2
        t = np.ones(active.size)
        current = theta[active]
        # Armijo backtracking where Newton could overshoot; near the optimum (tiny decrement) the full step
        # is taken, since loss differences there are below floating-point resolution.
        for _ in range(30):
            trial = current - t[:, None] * step
            new_loss, _, _ = design.loss_grad_hess(trial, s, t_pair, l2, hessian=False)
            worse = ~(new_loss <= loss - 1e-4 * t * decrement) & (decrement > 1e-14)  # NaN is worse
            if not worse.any():
                break
            t[worse] *= 0.5
        theta[active] = current - t[:, None] * step
    else:
        _, grad, _ = design.loss_grad_hess(theta[active], s_all[active], t_all[active], l2, hessian=False)
        converged[active[np.abs(grad).max(axis=1) < tol]] = True
    return theta, converged


def _mle_exists(matchups: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, n_models: int) -> bool:
    """Zermelo/Ford condition: the graph "scored against" (a win or a tie) is strongly connected."""
    used = weights > 0
    a, b, y = matchups[used, 0], matchups[used, 1], outcomes[used]
    src = np.concatenate([a[y > 0], b[y < 1]])
    dst = np.concatenate([b[y > 0], a[y < 1]])
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(n_models, n_models))
    n_components, _ = connected_components(graph, directed=True, connection="strong")
    return n_components == 1


def bt_fit(
    matchups: ArrayLike,
    outcomes: ArrayLike,
    weights: ArrayLike,
    n_models: int,
    *,
    l2: float = 1e-6,
    theta0: ArrayLike | None = None,
) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry strengths ``theta`` (log10 units, mean 0) from unique rows.

    ``matchups`` ``(R, 2)`` model indices (A, B), ``outcomes`` ``(R,)`` A's score in {0, 0.5, 1},
    ``weights`` ``(R,)`` non-negative counts (normalised to sum 1 inside). Objective and anchoring as in the
    module docstring. Returns ``(n_models,)`` float64. Raises ``ValueError`` on bad input, when ``l2 = 0``
    and the maximum-likelihood estimate does not exist (e.g. an undefeated model), or when the fit does not
    converge.
    """
    m = np.asarray(matchups, dtype=np.int64).reshape(-1, 2)
    y = np.asarray(outcomes, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if y.shape != (m.shape[0],) or w.shape != (m.shape[0],):
        raise ValueError("matchups, outcomes and weights must describe the same rows")
    if m.size and (m.min() < 0 or m.max() >= n_models):
        raise ValueError(f"matchups must index models 0..{n_models - 1}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive total")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if l2 == 0 and not _mle_exists(m, y, w, n_models):
        raise ValueError(
            "with l2 = 0 the maximum-likelihood ratings do not exist: some group of models never lost (or "
            "never won) against the rest, e.g. a model with only wins; use l2 > 0"
        )
    w = w / w.sum()
    x0 = np.zeros(n_models) if theta0 is None else np.asarray(theta0, dtype=np.float64)
    x0 = x0 - x0.mean()
    result = minimize(
        bt_loss_and_grad,
        x0,
        args=(m, y, w, l2),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 1000, "gtol": 1e-9},
    )
    theta = result.x - result.x.mean()
    theta, ok = _newton(_Design(m, n_models), theta[None, :], y, w[None, :], l2)
    if not ok[0] or not np.isfinite(theta).all():
        raise ValueError(
            "the Bradley-Terry fit did not converge (with l2 = 0 every model needs a win and a loss and the "
            "comparison graph must be connected)"
        )
    return theta[0] - theta[0].mean()


def _refit_rounds(
    m: np.ndarray, y: np.ndarray, weights: np.ndarray, n_models: int, theta_hat: ArrayLike, l2: float
) -> np.ndarray:
    """``(rounds, n_models)`` strengths refitted for each round's row weights ``(rounds, R)`` (each summing to 1),
    every round starting from ``theta_hat``; rounds batched Newton does not settle are refitted with bt_fit."""
    rounds = weights.shape[0]
    design = _Design(m, n_models)
    start = np.broadcast_to(np.asarray(theta_hat, dtype=np.float64), (rounds, n_models))
    out = np.empty((rounds, n_models))
    block = max(1, (1 << 23) // max(1, m.shape[0] + n_models * n_models))
    for s in range(0, rounds, block):
        theta, ok = _newton(design, start[s : s + block], y, weights[s : s + block], l2)
        for i in np.flatnonzero(~ok):
            theta[i] = bt_fit(m, y, weights[s + i], n_models, l2=l2, theta0=start[s + i])
        out[s : s + block] = theta - theta.mean(axis=1, keepdims=True)
    return out


def bt_bootstrap(
    matchups: ArrayLike,
    outcomes: ArrayLike,
    counts: ArrayLike,
    n_models: int,
    *,
    theta_hat: ArrayLike,
    rounds: int = 1000,
    seed: int = 0,
    l2: float = 1e-6,
) -> np.ndarray:
    """``(rounds, n_models)`` strengths refitted on multinomial resamples of the unique rows' counts.

    Each round's counts are ``rng.multinomial(V, counts / V)`` with ``V = sum(counts)`` and
    ``rng = numpy.random.default_rng(seed)`` (all rounds drawn in one call); every round starts from
    ``theta_hat``. Rounds that batched Newton does not settle are refitted one by one with :func:`bt_fit`.
    This resamples single votes: right when votes are independent; when several votes were cast on one
    comparison use :func:`bt_bootstrap_clusters`.
    """
    m = np.asarray(matchups, dtype=np.int64).reshape(-1, 2)
    y = np.asarray(outcomes, dtype=np.float64)
    c = np.asarray(counts)
    if not np.issubdtype(c.dtype, np.integer) or (c < 0).any():
        raise ValueError("counts must be non-negative integers for a multinomial bootstrap")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    total = int(c.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, c / total, size=rounds).astype(np.float64) / total
    return _refit_rounds(m, y, draws, n_models, theta_hat, l2)


def cluster_types(vote_rows: ArrayLike, clusters: ArrayLike, counts: ArrayLike, n_rows: int) -> tuple[Any, np.ndarray]:
    """Clusters of votes (e.g. the votes cast on one comparison) grouped by what they hold.

    ``vote_rows`` ``(V,)``: each vote's unique row (:func:`unique_rows`' order); ``clusters`` ``(V,)``: each vote's
    cluster id (any sortable values); ``counts`` ``(V,)``: how many times each vote counts. Returns
    ``(composition, multiplicity)``: a sparse ``(T, n_rows)`` matrix, one row per distinct cluster content (how many
    votes it puts on each unique row), and how many clusters have that content (summing to the number of
    clusters). Resampling clusters with replacement is a multinomial over these T types.
    """
    rows = np.asarray(vote_rows, dtype=np.int64)
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    cluster = cluster.ravel()
    entry, inverse = np.unique(cluster * n_rows + rows, return_inverse=True)  # sorted by cluster, then row
    count = np.bincount(inverse.ravel(), weights=np.asarray(counts, dtype=np.float64), minlength=entry.size)
    keep = count > 0
    entry, count = entry[keep], np.rint(count[keep]).astype(np.int64)
    cl, row = np.divmod(entry, n_rows)
    n_clusters = int(cl.max()) + 1 if cl.size else 0
    first = np.searchsorted(cl, np.arange(n_clusters))
    width = int(np.bincount(cl, minlength=n_clusters).max()) if cl.size else 0
    signature = np.full((n_clusters, 2 * width), -1, dtype=np.int64)  # (row, count) pairs, padded
    slot = np.arange(cl.size) - first[cl]
    signature[cl, 2 * slot] = row
    signature[cl, 2 * slot + 1] = count
    # One integer per signature when it fits in int64 (sorting integers is far faster than sorting rows).
    base = (n_rows + 1) * (int(count.max(initial=0)) + 2)
    if width and width * math.log2(base) < 62:
        code = np.zeros(n_clusters, dtype=np.int64)
        for k in range(width):
            code = code * base + (signature[:, 2 * k] + 1) * (base // (n_rows + 1)) + signature[:, 2 * k + 1] + 1
        _, first_of_type, multiplicity = np.unique(code, return_index=True, return_counts=True)
        types = signature[first_of_type]
    else:
        types, multiplicity = np.unique(signature, axis=0, return_counts=True)
    type_rows, type_counts = types[:, 0::2], types[:, 1::2]
    used = type_rows >= 0
    composition = csr_matrix(
        (type_counts[used].astype(np.float64), (np.nonzero(used)[0], type_rows[used])), shape=(types.shape[0], n_rows)
    )
    return composition, multiplicity


def bt_bootstrap_clusters(
    matchups: ArrayLike,
    outcomes: ArrayLike,
    composition: Any,
    multiplicity: ArrayLike,
    n_models: int,
    *,
    theta_hat: ArrayLike,
    rounds: int = 1000,
    seed: int = 0,
    l2: float = 1e-6,
) -> np.ndarray:
    """``(rounds, n_models)`` strengths refitted on resamples of whole clusters (:func:`cluster_types`).

    Each round draws ``C`` clusters with replacement from the ``C`` clusters, i.e. type counts
    ``rng.multinomial(C, multiplicity / C)`` (``rng = numpy.random.default_rng(seed)``, all rounds in one call);
    a round's row weights are the drawn clusters' votes, normalised to sum 1. Votes on one comparison are
    correlated (the same sets, often the same annotators' reading of them), so resampling single votes makes the
    intervals too narrow; resampling comparisons keeps their correlation.
    """
    m = np.asarray(matchups, dtype=np.int64).reshape(-1, 2)
    y = np.asarray(outcomes, dtype=np.float64)
    mult = np.asarray(multiplicity, dtype=np.int64)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    total = int(mult.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, mult / total, size=rounds).astype(np.float64)
    weights = np.asarray((composition.T @ draws.T).T)
    weights /= weights.sum(axis=1, keepdims=True)
    return _refit_rounds(m, y, weights, n_models, theta_hat, l2)


# --------------------------------------------------------------------------------------------------------
# From votes to a leaderboard
# --------------------------------------------------------------------------------------------------------


def _outcome_scores(outcome: ArrayLike) -> np.ndarray:
    o = np.asarray(outcome)
    if o.dtype.kind in "US":
        o = o.astype(str)
        y = np.full(o.shape, np.nan)
        for name, value in _OUTCOME_NAMES.items():
            y[o == name] = value
    elif o.dtype.kind == "O":
        y = np.array([_OUTCOME_NAMES.get(v, np.nan) if isinstance(v, str) else v for v in o], dtype=np.float64)
    else:
        y = o.astype(np.float64)
    bad = np.flatnonzero(~np.isin(y, (0.0, 0.5, 1.0)))
    if bad.size:
        raise ValueError(
            f"outcome[{bad[0]}] = {np.asarray(o[bad[0]]).item()!r}: expected 1 / 'a' (A won), "
            "0 / 'b' (B won) or 0.5 / 'tie'"
        )
    return y


def _model_codes(
    model_a: np.ndarray, model_b: np.ndarray, models: Sequence[str] | None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Model names and the two columns as integer codes (a dict look-up per vote: faster than sorting)."""
    index: dict[str, int] = {}
    if models is not None:
        names = [str(x) for x in models]
        if len(set(names)) != len(names):
            raise ValueError("models lists a name twice")
        index = {name: i for i, name in enumerate(names)}
    codes = []
    for side, column in (("model_a", model_a), ("model_b", model_b)):
        values = column.astype(str).tolist()
        if models is None:
            codes.append(np.fromiter((index.setdefault(v, len(index)) for v in values), np.int64, len(values)))
            continue
        try:
            codes.append(np.fromiter((index[v] for v in values), np.int64, len(values)))
        except KeyError as exc:
            row = values.index(exc.args[0])
            raise ValueError(f"{side}[{row}] = {exc.args[0]!r} is not a known model") from None
    if models is None:  # list models in sorted order
        names = sorted(index)
        remap = np.empty(len(names), dtype=np.int64)
        for new_code, name in enumerate(names):
            remap[index[name]] = new_code
        codes = [remap[c] for c in codes]
    return names, codes[0], codes[1]


def unique_rows(
    model_a: Sequence[str] | ArrayLike,
    model_b: Sequence[str] | ArrayLike,
    outcome: ArrayLike,
    *,
    counts: ArrayLike | None = None,
    models: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Reduce votes to counts of unique (A, B, outcome) rows with A < B in model order.

    ``outcome`` per vote: A's score 1 / 0 / 0.5, or ``"a"``/``"model_a"``, ``"b"``/``"model_b"``, ``"tie"``.
    ``counts`` (optional, non-negative ints) repeats each vote. ``models`` fixes the model list (and order);
    a vote naming another model raises ``ValueError``; without it models are listed in sorted order.
    Returns ``(names, matchups (R, 2), outcomes (R,), counts (R,) int64)``, rows with zero count dropped.
    Raises ``ValueError`` for a model playing itself, mismatched lengths or bad outcomes.
    """
    names, matchups, outcomes, row_counts, _, _ = _unique_rows(model_a, model_b, outcome, counts=counts, models=models)
    return names, matchups, outcomes, row_counts


def _unique_rows(
    model_a: Sequence[str] | ArrayLike,
    model_b: Sequence[str] | ArrayLike,
    outcome: ArrayLike,
    *,
    counts: ArrayLike | None = None,
    models: Sequence[str] | None = None,
    return_vote_rows: bool = False,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`unique_rows`, plus each vote's row index (when asked; meaningless for votes with count 0) and the
    per-vote counts."""
    a = np.asarray(model_a)
    b = np.asarray(model_b)
    n = a.shape[0] if a.ndim else 0
    if a.ndim != 1 or b.shape != a.shape:
        raise ValueError(f"model_a {a.shape} and model_b {b.shape} must be 1-D of the same length")
    y = _outcome_scores(outcome)
    if y.shape != (n,):
        raise ValueError(f"outcome must have one entry per vote ({n}), got shape {y.shape}")
    if counts is None:
        c = np.ones(n, dtype=np.int64)
    else:
        c = np.asarray(counts)
        if c.shape != (n,) or (c.size and (not np.issubdtype(c.dtype, np.integer) or (c < 0).any())):
            raise ValueError(f"counts must be {n} non-negative integers")
        c = c.astype(np.int64)
    names, ia, ib = _model_codes(a, b, models)
    same = np.flatnonzero(ia == ib)
    if same.size:
        raise ValueError(f"vote {same[0]}: model {names[ia[same[0]]]!r} plays itself")
    flip = ia > ib
    lo, hi = np.where(flip, ib, ia), np.where(flip, ia, ib)
    y = np.where(flip, 1.0 - y, y)
    k = len(names)
    key = (lo * k + hi) * 3 + (2.0 * y).astype(np.int64)  # outcome code 0: B won, 1: tie, 2: A won
    totals = np.bincount(key, weights=c, minlength=k * k * 3) if n else np.zeros(k * k * 3)
    nz = np.flatnonzero(totals)
    pair, code = np.divmod(nz, 3)
    matchups = np.stack(np.divmod(pair, k), axis=1).astype(np.int64)
    vote_rows = np.searchsorted(nz, key) if return_vote_rows else None
    return names, matchups, code / 2.0, np.rint(totals[nz]).astype(np.int64), vote_rows, c


def arena_ratings(
    model_a: Sequence[str] | ArrayLike,
    model_b: Sequence[str] | ArrayLike,
    outcome: ArrayLike,
    *,
    counts: ArrayLike | None = None,
    models: Sequence[str] | None = None,
    clusters: ArrayLike | None = None,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    l2: float = 1e-6,
) -> list[dict[str, Any]]:
    """Arena leaderboard rows from pairwise votes, best first.

    Inputs as :func:`unique_rows`; ``clusters`` (optional, one id per vote: the comparison it was cast on) makes
    the bootstrap resample whole clusters (:func:`bt_bootstrap_clusters`) instead of single votes. Returns one
    dict per model::

        {"model": name, "rating": float, "lower": float, "upper": float, "rank": int, "votes": int}

    sorted by rating (descending), where ``votes`` is the number of votes the model took part in. Models
    listed in ``models`` without any vote come last with ``rating``/``lower``/``upper``/``rank`` ``None``
    and ``votes`` 0; they take no part in the fit. Fit, intervals and rank as in the module docstring.
    An empty vote list gives rows only for ``models``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    names, matchups, outcomes, row_counts, vote_rows, vote_counts = _unique_rows(
        model_a, model_b, outcome, counts=counts, models=models, return_vote_rows=clusters is not None
    )
    if clusters is not None and np.shape(clusters) != (vote_counts.size,):
        raise ValueError(f"clusters must hold one id per vote ({vote_counts.size}), got shape {np.shape(clusters)}")
    votes = np.bincount(matchups.ravel(), weights=np.repeat(row_counts, 2), minlength=len(names))
    played = np.flatnonzero(votes > 0)
    rows: list[dict[str, Any]] = []
    if played.size:
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[played] = np.arange(played.size)
        sub = remap[matchups]
        theta = bt_fit(sub, outcomes, row_counts, played.size, l2=l2)
        if clusters is None:
            boot = bt_bootstrap(sub, outcomes, row_counts, played.size, theta_hat=theta, rounds=rounds, seed=seed,
                                l2=l2)
        else:
            assert vote_rows is not None  # asked for above
            counted = vote_counts > 0
            composition, multiplicity = cluster_types(
                vote_rows[counted], np.asarray(clusters)[counted], vote_counts[counted], matchups.shape[0]
            )
            boot = bt_bootstrap_clusters(sub, outcomes, composition, multiplicity, played.size, theta_hat=theta,
                                         rounds=rounds, seed=seed, l2=l2)
        ratings = SCALE * theta + INIT_RATING
        q = (1.0 - level) / 2
        lower, upper = np.quantile(SCALE * boot + INIT_RATING, [q, 1.0 - q], axis=0)
        ranks = 1 + np.count_nonzero(lower[None, :] > upper[:, None], axis=1)
        for j in np.argsort(-ratings, kind="stable"):
            rows.append(
                {
                    "model": names[played[j]],
                    "rating": float(ratings[j]),
                    "lower": float(lower[j]),
                    "upper": float(upper[j]),
                    "rank": int(ranks[j]),
                    "votes": int(votes[played[j]]),
                }
            )
    for i in np.flatnonzero(votes == 0):
        rows.append({"model": names[i], "rating": None, "lower": None, "upper": None, "rank": None, "votes": 0})
    return rows
