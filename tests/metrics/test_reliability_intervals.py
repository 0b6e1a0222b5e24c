"""Agreement and alpha from vote counts, and their bootstrap intervals (hpbench/metrics/reliability_intervals.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hpbench.metrics import reliability
from hpbench.metrics.reliability_intervals import (
    agreement_from_counts,
    alpha_from_counts,
    reliability_with_intervals,
)


def test_a_small_case_matches_the_hand_computation():
    # Items (a a b), (b b b), (a b tie), (a): the last has one vote and is dropped.
    counts = np.array([[2, 1, 0], [0, 3, 0], [1, 1, 1], [1, 0, 0]])
    assert agreement_from_counts(*counts.T) == pytest.approx(4 / 9)
    # o_aa 1, o_bb 3, off-diagonal 5; n_c 3, 5, 1; n 9: 1 - 8 * 5 / (81 - 35).
    assert alpha_from_counts(*counts.T) == pytest.approx(1 - 40 / 46)


def test_it_equals_the_reliability_module_on_random_votes():
    rng = np.random.default_rng(7)
    items = [list(rng.choice(["a", "b", "tie"], size=int(rng.integers(1, 7)), p=[0.5, 0.4, 0.1])) for _ in range(300)]
    counts = np.array([[item.count(k) for k in ("a", "b", "tie")] for item in items])
    assert agreement_from_counts(*counts.T) == pytest.approx(reliability.pairwise_agreement(items), abs=1e-12)
    assert alpha_from_counts(*counts.T) == pytest.approx(reliability.krippendorff_alpha_nominal(items), abs=1e-12)


def test_batched_counts_give_one_value_per_row():
    counts = np.array([[2, 1, 0], [0, 3, 0]])
    batch = [np.stack([c, c[::-1]]) for c in counts.T]
    assert agreement_from_counts(*batch).tolist() == pytest.approx([4 / 6, 4 / 6])


def test_intervals_hold_the_estimate_and_are_none_when_undefined():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, size=(80, 3))
    out = reliability_with_intervals(counts, rounds=300)
    assert out["agreement_ci"][0] <= out["pairwise_agreement"] <= out["agreement_ci"][1]
    assert out["alpha_ci"][0] <= out["krippendorff_alpha"] <= out["alpha_ci"][1]
    assert out == reliability_with_intervals(counts, rounds=300)  # deterministic
    same = reliability_with_intervals(np.array([[3, 0, 0], [2, 0, 0]]))
    assert same["pairwise_agreement"] == 1.0 and same["krippendorff_alpha"] is None and same["alpha_ci"] == (None, None)
    empty = reliability_with_intervals(np.zeros((0, 3)))
    assert empty["items"] == 0 and empty["pairwise_agreement"] is None
    with pytest.raises(ValueError, match="items, categories"):
        reliability_with_intervals(np.zeros(3))
