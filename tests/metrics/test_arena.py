"""Bradley-Terry arena ratings against direct likelihood computations and closed forms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hpbench.metrics.arena import arena_ratings, bt_fit, unique_rows, win_probability


def log_likelihood(ratings: dict[str, float], votes: list[tuple[str, str, float]]) -> float:
    """Sum over votes of y log P(A beats B) + (1 - y) log P(B beats A), Arena's formula, vote by vote."""
    total = 0.0
    for a, b, y in votes:
        p = 1.0 / (1.0 + 10 ** ((ratings[b] - ratings[a]) / 400))
        total += y * math.log(p) + (1 - y) * math.log(1 - p)
    return total


def as_columns(votes: list[tuple[str, str, float]]) -> tuple[list[str], list[str], list[float]]:
    return [v[0] for v in votes], [v[1] for v in votes], [v[2] for v in votes]


VOTES = (
    [("x", "y", 1.0)] * 7
    + [("y", "x", 1.0)] * 3
    + [("x", "z", 1.0)] * 4
    + [("z", "x", 1.0)] * 4
    + [("x", "z", 0.5)] * 2
    + [("y", "z", 1.0)] * 2
    + [("z", "y", 1.0)] * 5
    + [("w", "x", 1.0)] * 2
    + [("x", "w", 1.0)] * 1
)


def test_the_win_probability_uses_base_10_and_scale_400() -> None:
    assert win_probability(1000, 1000) == 0.5
    assert win_probability(1400, 1000) == pytest.approx(10 / 11)
    assert win_probability(1000, 1400) == pytest.approx(1 / 11)


def test_the_fitted_ratings_are_a_stationary_point_of_the_direct_log_likelihood() -> None:
    rows = arena_ratings(*as_columns(VOTES), rounds=20, l2=0.0)
    ratings = {r["model"]: r["rating"] for r in rows}
    assert sum(ratings.values()) / 4 == pytest.approx(1000.0)
    h = 1e-3
    for model in ratings:
        up = dict(ratings, **{model: ratings[model] + h})
        down = dict(ratings, **{model: ratings[model] - h})
        gradient = (log_likelihood(up, VOTES) - log_likelihood(down, VOTES)) / (2 * h)
        assert abs(gradient) < 1e-6, (model, gradient)
    # and a maximum: moving any rating by 5 points lowers the likelihood
    best = log_likelihood(ratings, VOTES)
    for model in ratings:
        assert log_likelihood(dict(ratings, **{model: ratings[model] + 5}), VOTES) < best


def test_two_models_get_the_closed_form_rating_gap() -> None:
    # A wins 3 and loses 1: p = 3/4, gap = 400 log10(3) = 190.85, ratings 1000 +- 95.42
    # (B vs A, "b") is a win for A as well
    rows = arena_ratings(["A", "A", "B", "A"], ["B", "B", "A", "B"], ["a", "a", "b", "b"], rounds=50)
    assert [r["model"] for r in rows] == ["A", "B"]
    assert rows[0]["rating"] - rows[1]["rating"] == pytest.approx(400 * math.log10(3), abs=1e-3)
    assert rows[0]["rating"] + rows[1]["rating"] == pytest.approx(2000.0)


def test_a_tie_counts_as_half_a_win_for_each_side() -> None:
    # 1 win, 2 ties and 1 loss for A: A's score is (1 + 0.5 + 0.5 + 0) / 4 = 1/2, so equal ratings
    with_ties = arena_ratings(["A", "A", "A", "A"], ["B", "B", "B", "B"], [1, 0.5, 0.5, 0], rounds=10)
    # the same as one extra win and one extra loss in place of the two ties
    as_halves = arena_ratings(["A"] * 4, ["B"] * 4, [1, 1, 0, 0], rounds=10)
    assert with_ties[0]["rating"] == pytest.approx(as_halves[0]["rating"]) == pytest.approx(1000.0)
    one_win_one_tie = arena_ratings(["A", "A"], ["B", "B"], ["a", "tie"], rounds=10)
    # p = 1.5 / 2 = 3/4 -> gap 400 log10(3)
    gap = one_win_one_tie[0]["rating"] - one_win_one_tie[1]["rating"]
    assert gap == pytest.approx(400 * math.log10(3), abs=1e-3)


def test_votes_are_reduced_to_counts_of_unique_rows_in_canonical_order() -> None:
    names, matchups, outcomes, counts = unique_rows(
        ["b", "a", "a", "b", "a"], ["a", "b", "b", "a", "b"], ["a", "b", "tie", "tie", "b"]
    )
    # "b beats a" is "a loses to b": rows (a, b, 0) x 3 and (a, b, 0.5) x 2
    assert names == ["a", "b"]
    assert matchups.tolist() == [[0, 1], [0, 1]]
    assert outcomes.tolist() == [0.0, 0.5]
    assert counts.tolist() == [3, 2]


def test_counts_weigh_a_vote_like_repeating_it() -> None:
    repeated = arena_ratings(["p", "p", "p", "q"], ["q", "q", "q", "p"], [1, 1, 1, 1], rounds=30, seed=4)
    weighted = arena_ratings(["p", "q"], ["q", "p"], [1, 1], counts=[3, 1], rounds=30, seed=4)
    assert repeated == weighted


def test_a_model_with_only_wins_gets_a_finite_rating_at_the_top() -> None:
    votes = VOTES + [("champ", m, 1.0) for m in "xyzw" for _ in range(3)]
    rows = arena_ratings(*as_columns(votes), rounds=100)
    assert rows[0]["model"] == "champ"
    assert all(math.isfinite(r["rating"]) and math.isfinite(r["upper"]) for r in rows)
    with pytest.raises(ValueError, match="with l2 = 0 the maximum-likelihood ratings do not exist"):
        arena_ratings(*as_columns(votes), rounds=5, l2=0.0)


def test_bootstrap_intervals_are_seeded_and_ranks_follow_non_overlapping_intervals() -> None:
    rng = np.random.default_rng(0)
    true = {"strong": 1300.0, "mid1": 1000.0, "mid2": 1005.0, "weak": 700.0}
    names = list(true)
    a = rng.integers(0, 4, 4000)
    b = (a + rng.integers(1, 4, 4000)) % 4
    p = win_probability(np.array([true[names[i]] for i in a]), np.array([true[names[i]] for i in b]))
    outcome = (rng.random(4000) < p).astype(float)
    model_a, model_b = np.array(names)[a], np.array(names)[b]

    rows = arena_ratings(model_a, model_b, outcome, rounds=200, seed=1)
    assert rows == arena_ratings(model_a, model_b, outcome, rounds=200, seed=1)
    assert rows != arena_ratings(model_a, model_b, outcome, rounds=200, seed=2)
    json.dumps(rows)
    by_name = {r["model"]: r for r in rows}
    for r in rows:
        assert r["lower"] < r["rating"] < r["upper"]
        assert r["rank"] == 1 + sum(other["lower"] > r["upper"] for other in rows)
    assert by_name["strong"]["rank"] == 1
    assert by_name["mid1"]["rank"] == by_name["mid2"]["rank"] == 2  # intervals overlap: shared rank
    assert by_name["weak"]["rank"] == 4
    assert sum(r["votes"] for r in rows) == 2 * 4000


def test_unknown_models_are_refused_and_listed_models_without_votes_come_last() -> None:
    with pytest.raises(ValueError, match="model_b\\[1\\] = 'ghost' is not a known model"):
        arena_ratings(["x", "x"], ["y", "ghost"], ["a", "b"], models=["x", "y"], rounds=5)
    rows = arena_ratings(["x"], ["y"], ["tie"], models=["x", "y", "idle"], rounds=5)
    assert rows[-1] == {
        "model": "idle",
        "rating": None,
        "lower": None,
        "upper": None,
        "rank": None,
        "votes": 0,
    }
    assert [r["votes"] for r in rows[:2]] == [1, 1]


def test_bad_votes_are_refused_with_their_position() -> None:
    with pytest.raises(ValueError, match="vote 1: model 'x' plays itself"):
        arena_ratings(["x", "x"], ["y", "x"], ["a", "a"], rounds=5)
    with pytest.raises(ValueError, match=r"outcome\[0\] = 'draw'"):
        arena_ratings(["x"], ["y"], ["draw"], rounds=5)
    with pytest.raises(ValueError, match=r"outcome\[1\] = 2: expected"):
        arena_ratings(["x", "x"], ["y", "y"], [1, 2], rounds=5)


def test_bt_fit_on_rows_has_zero_gradient_of_the_mean_log_likelihood() -> None:
    names, matchups, outcomes, counts = unique_rows(*as_columns(VOTES))
    theta = bt_fit(matchups, outcomes, counts, len(names), l2=0.0)
    p = 1 / (1 + 10.0 ** (theta[matchups[:, 1]] - theta[matchups[:, 0]]))
    # d/d theta_A of y log p + (1 - y) log(1 - p) = ln(10) (y - p); d/d theta_B is its negative
    grad = np.zeros(len(names))
    np.add.at(grad, matchups[:, 0], counts * math.log(10) * (outcomes - p))
    np.add.at(grad, matchups[:, 1], -counts * math.log(10) * (outcomes - p))
    assert np.abs(grad).max() < 1e-6
    assert theta.mean() == pytest.approx(0.0, abs=1e-12)


# --- resampling comparisons rather than votes ------------------------------------------------------------------


def test_cluster_types_group_comparisons_by_what_their_votes_are() -> None:
    from hpbench.metrics.arena import cluster_types

    # rows 0, 1, 2; comparisons "p" and "q" both hold two votes on row 0 and one on row 2; "r" one vote on row 1
    vote_rows = [0, 2, 0, 1, 0, 0, 2]
    clusters = ["p", "p", "p", "r", "q", "q", "q"]
    composition, multiplicity = cluster_types(vote_rows, clusters, np.ones(7, dtype=int), 3)
    by_content = {tuple(composition.toarray()[t]): int(multiplicity[t]) for t in range(len(multiplicity))}
    assert by_content == {(2.0, 0.0, 1.0): 2, (0.0, 1.0, 0.0): 1}


def test_one_vote_per_comparison_resamples_exactly_as_single_votes() -> None:
    a, b, y = as_columns(VOTES)
    assert arena_ratings(a, b, y, clusters=np.arange(len(a)), rounds=200) == arena_ratings(a, b, y, rounds=200)


def _correlated_arena(rng: np.random.Generator, true: np.ndarray, comparisons: int, votes_each: int):
    """Comparisons of random model pairs; each comparison has its own chance q ~ Beta(p, 1 - p) (mean p, the
    Bradley-Terry probability: the truth), and its votes are drawn from q: votes on one comparison agree more
    than votes on different ones (intra-class correlation 1/2)."""
    m = true.size
    a = rng.integers(0, m, comparisons)
    b = (a + rng.integers(1, m, comparisons)) % m
    p = win_probability(true[a], true[b])
    q = rng.beta(p, 1.0 - p)
    wins = rng.random((comparisons, votes_each)) < q[:, None]
    names = np.array([f"m{i}" for i in range(m)])
    return (np.repeat(names[a], votes_each), np.repeat(names[b], votes_each), wins.ravel().astype(float),
            np.repeat(np.arange(comparisons), votes_each))


def test_resampling_comparisons_covers_the_true_ratings_where_resampling_votes_does_not() -> None:
    rng = np.random.default_rng(11)
    true = np.array([1100.0, 1040.0, 980.0, 880.0])
    true += 1000.0 - true.mean()  # the fit centres ratings on 1000
    covered = {"votes": 0, "comparisons": 0}
    total = 0
    for _ in range(100):
        a, b, y, comparison = _correlated_arena(rng, true, comparisons=300, votes_each=5)
        for how, clusters in (("votes", None), ("comparisons", comparison)):
            seed = int(rng.integers(1 << 30))
            rows = {r["model"]: r for r in arena_ratings(a, b, y, clusters=clusters, rounds=200, seed=seed)}
            covered[how] += sum(rows[f"m{i}"]["lower"] <= true[i] <= rows[f"m{i}"]["upper"] for i in range(true.size))
        total += true.size
    assert 0.88 <= covered["comparisons"] / total <= 0.99  # 94.5% with this seed
    assert covered["votes"] / total <= 0.85  # too narrow: 75.8% with this seed
