"""Does an annotator's voting favour one model beyond what the other annotators' votes on the same comparisons
predict? A stratified exchangeability test, per (annotator, model).

Null hypothesis: on each comparison, the annotator's vote is exchangeable with the others' votes on it, i.e. it
is a random draw from the comparison's votes. Then, on comparison ``i`` (two models' sets, ``n_i`` non-tie
votes of which ``k_i`` pick model M's set, the annotator's own vote included), the annotator picks M with
probability ``p_i = k_i / n_i``. Their count ``X`` of votes for M over the comparisons involving M is a sum of
independent Bernoulli(``p_i``): Poisson-binomial, whose upper tail ``P(X >= x)`` is computed exactly. The test
needs no model of what the "right" answer is, and a model that is simply better (every annotator picks it) gives
``p_i`` near 1: no evidence either way. An annotator who always picks M where the others mostly did not stands out.

With many (annotator, model) tests, a p-value is read against a family-wise bound: Bonferroni over the tests
made (``p_adjusted = min(1, p * tests)``). Pure (numpy only), so the bench and the web process share it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SteeringVote:
    """One vote on a model comparison: who, on which comparison, between which two models, and which side."""

    annotator: int
    comparison: int
    model_a: int
    model_b: int
    choice: str  # "a", "b" or "tie" (ties carry no evidence and are left out)


@dataclass(frozen=True)
class SteeringTest:
    """The test of one (annotator, model): ``votes`` informative comparisons, ``observed`` of them for the model,
    ``expected`` under the null, the one-sided exact p-value and the Bonferroni-adjusted one."""

    annotator: int
    model: int
    votes: int
    observed: int
    expected: float
    z: float
    p_value: float
    p_adjusted: float


def poisson_binomial_sf(probabilities: Iterable[float], x: int) -> float:
    """``P(S >= x)`` for ``S`` the sum of independent Bernoulli variables with these probabilities (exact, by
    convolution)."""
    pmf = np.array([1.0])
    for p in probabilities:
        pmf = np.concatenate([pmf * (1.0 - p), [0.0]]) + np.concatenate([[0.0], pmf * p])
    if x <= 0:
        return 1.0
    if x >= len(pmf):
        return 0.0
    return float(min(1.0, max(0.0, pmf[x:].sum())))


def steering_tests(votes: Iterable[SteeringVote], *, min_votes: int = 1) -> list[SteeringTest]:
    """One test per (annotator, model) with at least ``min_votes`` informative comparisons (those where the
    others' votes leave some doubt: ``0 < p_i < 1``), sorted by p-value (smallest first).

    Only comparisons with at least two non-tie votes count (a lone vote is always exchangeable with itself)."""
    votes = [v for v in votes if v.choice in ("a", "b") and v.model_a != v.model_b]
    per_comparison: dict[int, list[SteeringVote]] = defaultdict(list)
    for v in votes:
        per_comparison[v.comparison].append(v)
    probs: dict[tuple[int, int], list[float]] = defaultdict(list)
    hits: dict[tuple[int, int], int] = defaultdict(int)
    for cast in per_comparison.values():
        n = len(cast)
        if n < 2:
            continue
        k_a = sum(v.choice == "a" for v in cast)
        p_a = k_a / n
        if p_a in (0.0, 1.0):
            continue
        for v in cast:
            for model, p, picked in ((v.model_a, p_a, v.choice == "a"), (v.model_b, 1.0 - p_a, v.choice == "b")):
                probs[v.annotator, model].append(p)
                hits[v.annotator, model] += picked
    tested = [key for key, ps in probs.items() if len(ps) >= max(1, min_votes)]
    out = []
    for annotator, model in tested:
        ps = probs[annotator, model]
        x = hits[annotator, model]
        expected = float(sum(ps))
        variance = float(sum(p * (1.0 - p) for p in ps))
        p_value = poisson_binomial_sf(ps, x)
        out.append(
            SteeringTest(
                annotator=annotator,
                model=model,
                votes=len(ps),
                observed=x,
                expected=expected,
                z=(x - expected) / math.sqrt(variance) if variance > 0 else 0.0,
                p_value=p_value,
                p_adjusted=min(1.0, p_value * len(tested)),
            )
        )
    out.sort(key=lambda t: (t.p_value, t.annotator, t.model))
    return out


def worst_per_annotator(tests: Iterable[SteeringTest]) -> dict[int, SteeringTest]:
    """Each annotator's most significant test (the model their votes favour most)."""
    worst: dict[int, SteeringTest] = {}
    for t in tests:
        if t.annotator not in worst or t.p_value < worst[t.annotator].p_value:
            worst[t.annotator] = t
    return worst
