"""Fewer human votes for the same answer: when a comparison has enough votes, and which comparisons to ask.

Two rules, shared by the annotation campaigns (``annotate``) and the simulation bench ``bench/fewer_votes.py``:

**Adaptive overlap** (:func:`overlap_stop`). A comparison's a/b votes are Bernoulli draws with an unknown
probability ``p`` that a person prefers set a. Under a uniform prior, after ``a`` votes for a and ``b`` for b
the posterior is Beta(a + 1, b + 1), and the probability that the side leading now is the side most people
prefer is ``P(p > 1/2)`` (or ``P(p < 1/2)``) under it: :func:`majority_confidence`. A comparison stops asking
once it has ``min_votes`` and that probability reaches ``confidence`` (reason ``"decided"``), or once it has
``max_votes`` (reason ``"max_votes"``). With the defaults (2, 3, 0.8): 2-0 stops after two votes
(confidence 0.875), a 1-1 split asks a third vote and stops there at the maximum, so the verdict is always
the one fixed overlap 3 would reach, for 2 + P(split) votes instead of 3. Tie votes count towards the
maximum but for neither side.

**Informative pair selection** (:func:`selection_probabilities`). A candidate comparison is worth a vote in
proportion to how little the current evidence predicts its outcome and to how much it separates the scored
models: ``u = sqrt(p̂ (1 - p̂) (1 + d))``, where ``p̂`` is the predicted probability that people prefer set a
(:func:`predicted_preference`: a logistic model of the models' set-score difference and the Bradley-Terry
rating gap of the two models that made the sets, fitted on the comparisons already decided) and ``d`` is the
share of pairs of scored models that order the two sets differently (:func:`scorer_disagreement`).
``sqrt`` is the square-root allocation that minimises the variance of a weighted mean. A share
``random_share`` of the selection probability is spread uniformly, so every candidate keeps a chance.

**The design and its weights** (:func:`poisson_probabilities`, :func:`informative_draw`,
:func:`sequential_weights`). A campaign draws in rounds: its build (round 1), then each refresh. Round ``r``
draws among the ``N_r`` candidates not drawn before (the pool ``U_r``) by independent Bernoulli (Poisson)
draws, candidate ``i`` with probability ``π_ri = min(1, c p_ri)``, ``p_ri`` the selection probability above
and ``c`` set so that the expected count ``Σ π_ri`` is the requested ``n_r``. ``π_ri`` may depend on anything
observed before round ``r`` (votes, strengths): it is stored with each comparison, with its round.

Estimand: a population total ``T = Σ_i y_i`` over all ``N`` candidates (``y_i`` e.g. "model agrees with the
verdict"; means are ratios of two totals). After round ``r``, ``T̂_r = Σ_{i drawn before r} y_i +
Σ_{i drawn in r} y_i / π_ri`` is unbiased given everything seen before round ``r`` (Horvitz-Thompson over the
pool ``U_r``, plus the exactly known rest), hence unbiased. Any fixed convex combination ``Σ_r α_r T̂_r``
is then unbiased too; its weight for a candidate drawn in round ``r`` is ``w_i = α_r / π_ri + A_{r+1}``
with ``A_r = Σ_{s >= r} α_s``. ``α`` is chosen from the plan alone (``N`` and the requested ``n_r``), so it
is fixed whatever the draws: ``A_r = (N / n) (1 - (N - n) / N_r)`` with ``n = Σ n_r`` and
``N_r = N - Σ_{s<r} n_s``, the choice that gives every drawn candidate the same weight ``N / n`` when every
round is uniform. The estimates weight pairs by ``w`` (stored relative to uniform, ``w n / N``) in Hajek
ratios ``Σ w y / Σ w`` (:func:`weighted_agreement`; the leaderboard's agreement, preference ratio and
per-category figures, :mod:`hpbench.metrics.preference`). Exact (unbiased totals) when the number and
sizes of the rounds do not depend on the votes' outcomes; the probabilities themselves may.
Single-draw weights ``1 / (π N)`` of a draw without replacement, which earlier versions stored, are not
inclusion probabilities of a many-pair draw and were biased (``tests/metrics/test_adaptive.py`` simulates
both).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, expit

#: Stop reasons recorded per comparison.
STOP_DECIDED, STOP_MAX_VOTES = "decided", "max_votes"


def majority_confidence(votes_a: int, votes_b: int) -> float:
    """Posterior probability (uniform prior) that the side leading after ``votes_a``/``votes_b`` is the majority.

    0.5 on a level score (no votes included).
    """
    if votes_a < 0 or votes_b < 0:
        raise ValueError("vote counts must be >= 0")
    # P(p > 1/2) for p ~ Beta(a + 1, b + 1) is 1 - I_{1/2}(a + 1, b + 1).
    p_a = 1.0 - float(betainc(votes_a + 1, votes_b + 1, 0.5))
    return max(p_a, 1.0 - p_a)


def overlap_stop(
    votes_a: int, votes_b: int, votes_tie: int = 0, *, min_votes: int, max_votes: int, confidence: float
) -> str | None:
    """Why a comparison with these votes needs no more (``"decided"`` / ``"max_votes"``), or ``None`` to ask more.

    Raises ``ValueError`` unless ``1 <= min_votes <= max_votes`` and ``0.5 < confidence < 1``.
    """
    if not 1 <= min_votes <= max_votes:
        raise ValueError(f"need 1 <= min_votes <= max_votes, got {min_votes}, {max_votes}")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    total = votes_a + votes_b + votes_tie
    if total >= min_votes and votes_a != votes_b and majority_confidence(votes_a, votes_b) >= confidence:
        return STOP_DECIDED
    if total >= max_votes:
        return STOP_MAX_VOTES
    return None


def scorer_disagreement(prefers_a: ArrayLike) -> np.ndarray:
    """Share of pairs of scored models that order a comparison's sets differently.

    ``prefers_a`` ``(C, K)`` booleans: scored model k scores set a above set b on comparison c. Returns ``(C,)``
    in [0, 1] (0 with fewer than two models).
    """
    x = np.asarray(prefers_a, dtype=bool)
    k = x.shape[1]
    if k < 2:
        return np.zeros(x.shape[0])
    n_a = x.sum(axis=1)
    return n_a * (k - n_a) / (k * (k - 1) / 2)


def predicted_preference(
    score_gap: ArrayLike,
    rating_gap: ArrayLike,
    *,
    fit_gap: ArrayLike | None = None,
    fit_rating: ArrayLike | None = None,
    fit_outcome: ArrayLike | None = None,
    l2: float = 1.0,
) -> np.ndarray:
    """Predicted probability that people prefer set a, from what is known before asking.

    ``score_gap`` ``(C,)``: the scored models' mean standardised difference of set scores (a minus b);
    ``rating_gap`` ``(C,)``: Bradley-Terry strength of the model that made set a minus that of set b (natural
    log units; 0 when unknown). The logistic coefficients start at 1 and 1 and are refitted (ridge ``l2``) on
    the decided comparisons ``fit_*`` (``fit_outcome`` 1 when a won) when any are given. Returns ``(C,)``.
    """
    x = np.column_stack([np.asarray(score_gap, dtype=np.float64), np.asarray(rating_gap, dtype=np.float64)])
    coef = np.ones(2)
    fy = np.asarray(fit_outcome if fit_outcome is not None else [], dtype=np.float64)
    if fy.size:
        fx = np.column_stack([np.asarray(fit_gap, dtype=np.float64), np.asarray(fit_rating, dtype=np.float64)])
        for _ in range(25):  # Newton steps on the ridge-penalised log-likelihood, shrunk towards (1, 1)
            p = expit(fx @ coef)
            grad = fx.T @ (p - fy) + l2 * (coef - 1.0)
            hess = (fx * (p * (1 - p))[:, None]).T @ fx + l2 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            coef -= step
            if np.abs(step).max() < 1e-9:
                break
    return expit(x @ coef)


def selection_probabilities(p_pref: ArrayLike, disagreement: ArrayLike, *, random_share: float) -> np.ndarray:
    """Probability of drawing each candidate next: ``random_share`` uniform, the rest by informativeness.

    ``p_pref`` and ``disagreement`` ``(C,)`` as in the module docstring. Returns ``(C,)`` summing to 1.
    Raises ``ValueError`` unless ``0 < random_share <= 1``.
    """
    if not 0 < random_share <= 1:
        raise ValueError(f"random_share must be in (0, 1], got {random_share}")
    p = np.clip(np.asarray(p_pref, dtype=np.float64), 0.0, 1.0)
    u = np.sqrt(p * (1 - p) * (1 + np.asarray(disagreement, dtype=np.float64)))
    n = u.size
    if n == 0:
        return u
    total = u.sum()
    informative = u / total if total > 0 else np.full(n, 1.0 / n)
    return random_share / n + (1 - random_share) * informative


def bt_strengths(
    maker_a: ArrayLike, maker_b: ArrayLike, wins_a: ArrayLike, votes: ArrayLike, n_models: int
) -> np.ndarray:
    """Bradley-Terry strengths (natural log units, mean 0) of the models that made the sets, from votes.

    Per finished comparison: the indices of the models that made sets a and b, the votes for a, and the votes
    for a or b. Zeros without comparisons. A light ridge (``l2 = 1e-3``) keeps undefeated models finite.
    """
    from hpbench.metrics.arena import bt_fit

    a = np.asarray(maker_a, dtype=np.int64)
    if a.size == 0:
        return np.zeros(n_models)
    b = np.asarray(maker_b, dtype=np.int64)
    wins = np.asarray(wins_a, dtype=np.float64)
    # Votes summed per ordered (maker a, maker b): bt_fit takes unique rows, and a few dozen rows fit in no time.
    won = np.zeros((n_models, n_models))
    lost = np.zeros((n_models, n_models))
    np.add.at(won, (a, b), wins)
    np.add.at(lost, (a, b), np.asarray(votes, dtype=np.float64) - wins)
    ii, jj = np.nonzero((won + lost) > 0)
    pairs = np.column_stack([ii, jj])
    matchups = np.vstack([pairs, pairs])
    outcomes = np.concatenate([np.ones(ii.size), np.zeros(ii.size)])
    weights = np.concatenate([won[ii, jj], lost[ii, jj]]) + 1e-9
    return bt_fit(matchups, outcomes, weights, n_models, l2=1e-3) * np.log(10)


def score_evidence(set_score_diff: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(score_gap, prefers_a)`` from each scored model's set-score difference (a minus b), ``(K, C)``.

    ``score_gap`` ``(C,)`` is the mean over scored models of the difference divided by that model's standard
    deviation over the candidates (1 where it is 0); ``prefers_a`` ``(C, K)`` is ``difference > 0``.
    """
    diff = np.asarray(set_score_diff, dtype=np.float64)
    if diff.ndim != 2:
        raise ValueError(f"set_score_diff must be (models, candidates), got shape {diff.shape}")
    if diff.shape[0] == 0:
        return np.zeros(diff.shape[1]), np.zeros((diff.shape[1], 0), dtype=bool)
    std = diff.std(axis=1, keepdims=True)
    std[std == 0] = 1.0
    return (diff / std).mean(axis=0), (diff > 0).T


def poisson_probabilities(priority: ArrayLike, take: float) -> np.ndarray:
    """Inclusion probabilities ``π_i = min(1, c priority_i)`` with ``Σ π_i = min(take, N)``.

    ``priority`` ``(N,)`` positive. The candidates whose ``c priority_i`` would pass 1 are included for sure
    and ``c`` is set again over the others until none passes. Raises ``ValueError`` for a priority <= 0.
    """
    p = np.asarray(priority, dtype=np.float64)
    n = p.size
    m = min(float(take), float(n))
    if n == 0 or m <= 0:
        return np.zeros(n)
    if (p <= 0).any() or not np.isfinite(p).all():
        raise ValueError("every priority must be positive and finite")
    if m >= n:
        return np.ones(n)
    sure = np.zeros(n, dtype=bool)
    while True:
        c = (m - sure.sum()) / p[~sure].sum()
        more = ~sure & (c * p >= 1.0)
        if not more.any():
            return np.where(sure, 1.0, c * p)
        sure |= more


def informative_draw(
    p_pref: ArrayLike, disagreement: ArrayLike, *, take: int, random_share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One round of the Poisson design (module doc): each candidate drawn independently with
    ``π = min(1, c p)``, ``p`` by :func:`selection_probabilities`, ``Σ π = min(take, N)`` (the expected count).

    Returns ``(indices, pi)``: the drawn candidates' indices (ascending) and each one's ``π`` in this round.
    """
    p = selection_probabilities(p_pref, disagreement, random_share=random_share)
    pi = poisson_probabilities(p, take) if p.size else p
    if int(take) <= 0 or pi.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    picks = np.flatnonzero(rng.random(pi.size) < pi)
    return picks, pi[picks]


def sequential_weights(
    *, population: int, round_sizes: ArrayLike, round_of: ArrayLike, pi: ArrayLike
) -> np.ndarray:
    """Each drawn candidate's weight, relative to uniform, for the rounds drawn so far (module doc).

    ``population`` ``N`` candidates in all; ``round_sizes`` ``(R,)`` each round's expected count ``n_r``
    (``Σ π`` over its pool); ``round_of`` ``(C,)`` the round (1..R) each drawn candidate came from, ``pi``
    ``(C,)`` its probability in that round. Returns ``(C,)``: ``w n / N`` with ``w = α_r / π + A_{r+1}``, so
    1 for every candidate when every round is uniform. Raises ``ValueError`` for a round outside 1..R, a
    ``π`` outside (0, 1] or round sizes that do not fit the population.
    """
    sizes = np.asarray(round_sizes, dtype=np.float64)
    r = np.asarray(round_of, dtype=np.int64)
    p = np.asarray(pi, dtype=np.float64)
    n_total, big_n = float(sizes.sum()), float(population)
    if r.size == 0:
        return np.zeros(0)
    if r.min() < 1 or r.max() > sizes.size:
        raise ValueError(f"rounds must be in 1..{sizes.size}, got {r.min()}..{r.max()}")
    if not ((p > 0) & (p <= 1 + 1e-12)).all():
        raise ValueError("every π must be in (0, 1]")
    if (sizes <= 0).any() or n_total > big_n + 1e-9:
        raise ValueError(f"round sizes {sizes.tolist()} do not fit a population of {population}")
    pool = big_n - np.concatenate([[0.0], np.cumsum(sizes)[:-1]])  # N_r
    rest = max(big_n - n_total, 0.0)  # N - n
    tail = np.append((big_n / n_total) * (1.0 - rest / pool), 0.0)  # A_1..A_R, A_{R+1} = 0
    alpha = tail[:-1] - tail[1:]
    weight = alpha[r - 1] / p + tail[r]
    return weight * n_total / big_n


def weighted_agreement(prefers_a: ArrayLike, human_a: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Each scored model's agreement with the human verdicts, comparisons weighted by ``1 / π``.

    ``prefers_a`` ``(C, K)`` model k scores set a higher; ``human_a`` ``(C,)`` the verdict is a; ``weights``
    ``(C,)`` positive. Returns ``(K,)``: the weighted (Hajek) mean of agreement; with equal weights this is the
    plain agreement of :func:`hpbench.metrics.preference.agreement` on untied verdicts.
    """
    x = np.asarray(prefers_a, dtype=bool)
    h = np.asarray(human_a, dtype=bool)
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return np.full(x.shape[1] if x.ndim == 2 else 0, np.nan)
    agree = x == h[:, None]
    return (w[:, None] * agree).sum(axis=0) / w.sum()
