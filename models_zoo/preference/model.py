"""The preference model: a symmetric logistic regression fitted with torch (L-BFGS), and cross-fitting."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def fit(features: ArrayLike, prefers_set1: ArrayLike, *, l2: float = 1.0, device: str = "cpu") -> np.ndarray:
    """Coefficients ``(F,)`` of ``p = sigmoid(x · β)`` maximising the likelihood of the pairs and their mirror
    images (``-x``, flipped label) minus ``l2 / 2 · |β|²``. Deterministic. Raises ``ValueError`` on no pairs."""
    import torch

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(prefers_set1, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise ValueError(f"need features (P, F) and one label per pair, got {x.shape} and {y.shape}")
    xt = torch.as_tensor(np.concatenate([x, -x]), dtype=torch.float64, device=device)
    yt = torch.as_tensor(np.concatenate([y, 1.0 - y]), dtype=torch.float64, device=device)
    beta = torch.zeros(x.shape[1], dtype=torch.float64, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([beta], lr=1.0, max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ beta, yt, reduction="sum") / 2
        loss = loss + 0.5 * l2 * (beta * beta).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return beta.detach().cpu().numpy()


def predict(beta: ArrayLike, features: ArrayLike) -> np.ndarray:
    """Probability that people prefer set 1, per pair."""
    z = np.asarray(features, dtype=np.float64) @ np.asarray(beta, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def folds_by_group(groups: ArrayLike, k: int, *, seed: int = 0) -> np.ndarray:
    """A fold index in ``[0, k)`` per item such that items of one group (a query) share a fold."""
    g = np.asarray(groups)
    uniq, inverse = np.unique(g, return_inverse=True)
    order = np.random.default_rng(seed).permutation(uniq.size)
    fold_of_group = np.empty(uniq.size, dtype=np.int64)
    fold_of_group[order] = np.arange(uniq.size) % k
    return fold_of_group[inverse]


def cross_fit(
    features: ArrayLike, prefers_set1: ArrayLike, folds: ArrayLike, *, l2: float = 1.0, device: str = "cpu"
) -> np.ndarray:
    """Out-of-fold probabilities: each pair's from a fit on the other folds only. Raises ``ValueError`` when
    fewer than two folds are non-empty."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(prefers_set1, dtype=np.float64)
    f = np.asarray(folds)
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError("cross-fitting needs at least two non-empty folds")
    out = np.empty(y.size)
    for fold in ids:
        held = f == fold
        out[held] = predict(fit(x[~held], y[~held], l2=l2, device=device), x[held])
    return out


#: The L2 strengths :func:`choose_l2` tries (in units of the summed log-likelihood of the pairs).
L2_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def choose_l2(
    features: ArrayLike, prefers_set1: ArrayLike, folds: ArrayLike, *, grid: tuple[float, ...] = L2_GRID
) -> float:
    """The L2 strength of ``grid`` with the lowest cross-validated log-loss over ``folds`` (each fold held out in
    turn, fitted by :func:`fit_newton` on the others); the strongest tried wins ties, and with fewer than two
    non-empty folds 1.0 is returned. Use it inside a training fold only (nested), never on held-out pairs."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(prefers_set1, dtype=np.float64)
    f = np.asarray(folds)
    ids = np.unique(f)
    if ids.size < 2:
        return 1.0
    best: tuple[float, float] | None = None
    for l2 in sorted(grid, reverse=True):
        loss = 0.0
        for fold in ids:
            held = f == fold
            q = np.clip(predict(fit_newton(x[~held], y[~held], l2=l2), x[held]), 1e-9, 1 - 1e-9)
            loss -= float(np.sum(y[held] * np.log(q) + (1 - y[held]) * np.log(1 - q)))
        if best is None or loss < best[0] - 1e-9:
            best = (loss, l2)
    assert best is not None
    return best[1]


def fit_newton(features: ArrayLike, prefers_set1: ArrayLike, *, l2: float = 1.0, iterations: int = 25) -> np.ndarray:
    """The same fit as :func:`fit` (same objective, same optimum) by Newton's method in numpy: for simulations that
    refit thousands of times (``bench/fewer_votes_ppi.py``), where a torch call per fit would dominate."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(prefers_set1, dtype=np.float64)
    beta = np.zeros(x.shape[1])
    eye = np.eye(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (p - y) + l2 * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * eye
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta
