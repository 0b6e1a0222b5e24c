"""Annotator agreement and Krippendorff's alpha against hand computations and published examples."""

from __future__ import annotations

from itertools import permutations

import pytest

from hpbench.metrics.reliability import (
    krippendorff_alpha_nominal,
    majority,
    pairwise_agreement,
    reliability_summary,
)

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units,
# values 1-5 with missing data; published nominal alpha = 0.743. Unit 12 has a single value and drops out.
OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
UNITS = [list(unit) for unit in zip(*OBSERVERS, strict=True)]


def alpha_by_definition(units: list[list[object]]) -> float:
    """Alpha from the pair-by-pair definition: 1 - D_o / D_e over pairable values."""
    units = [[v for v in u if v is not None] for u in units]
    units = [u for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    d_o = sum(sum(a != b for a, b in permutations(u, 2)) / (len(u) - 1) for u in units) / n
    d_e = sum(a != b for a, b in permutations(values, 2)) / (n * (n - 1))
    return 1 - d_o / d_e


def test_pairwise_agreement_pools_pairs_of_votes_over_items_with_two_or_more() -> None:
    # item 0: 3 pairs, 1 agreeing (the two 1s); item 1: 1 pair, agreeing; item 2: one vote, dropped;
    # item 3: 1 pair, disagreeing -> 2 / 5
    assert pairwise_agreement([[1, 1, 2], [2, 2], [1], [1, 2]]) == pytest.approx(0.4)


def test_missing_votes_are_ignored() -> None:
    assert pairwise_agreement([[1, None, 1], [None, 2, None]]) == 1.0


def test_pairwise_agreement_is_undefined_without_an_item_voted_twice() -> None:
    assert pairwise_agreement([[1], [2, None], []]) is None


def test_alpha_matches_krippendorffs_published_nominal_example() -> None:
    alpha = krippendorff_alpha_nominal(UNITS)
    assert round(alpha, 3) == 0.743
    assert alpha == pytest.approx(113 / 152)
    assert alpha == pytest.approx(alpha_by_definition(UNITS))


def test_alpha_matches_krippendorffs_published_binary_example() -> None:
    # 2 observers, 10 units; published alpha = 0.095
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha_nominal([list(u) for u in zip(a, b, strict=True)]) == pytest.approx(2 / 21)


def test_alpha_by_hand_on_a_small_case_with_string_categories() -> None:
    # values: 1,1 | 1,2 -> n = 4, n_1 = 3, n_2 = 1; coincidences o_12 = o_21 = 1;
    # alpha = 1 - (n - 1) * 2 / (2 * 3 * 1) = 0
    assert krippendorff_alpha_nominal([["1", "1"], ["1", "2"]]) == pytest.approx(0.0)
    units = [["a", "b", "a"], ["b", "b"], ["tie", "a", None], ["a"]]
    assert krippendorff_alpha_nominal(units) == pytest.approx(alpha_by_definition(units))


def test_alpha_is_one_for_perfect_agreement_and_undefined_for_a_single_value() -> None:
    assert krippendorff_alpha_nominal([[1, 1], [2, 2, 2]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([[1, 1], [1, 1, 1]]) is None
    assert krippendorff_alpha_nominal([[1], [2]]) is None


def test_the_summary_counts_items_and_pairs() -> None:
    summary = reliability_summary(UNITS)
    assert summary["items"] == 11
    # votes per unit: 3, 4 x 8 (units 2-9), 3, 2, 1 -> 3 + 8 * 6 + 3 + 1 = 55 pairs
    assert summary["pairs"] == 55
    assert summary["krippendorff_alpha"] == pytest.approx(113 / 152)


def test_a_string_in_place_of_a_list_of_votes_is_refused() -> None:
    with pytest.raises(ValueError, match="item 0: votes must be a sequence"):
        pairwise_agreement(["12"])


def test_majority_is_strict_and_a_level_top_is_a_tie():
    assert majority(["a", "a", "b"]) == "a"
    assert majority(["b", "tie", "b"]) == "b"
    assert majority(iter(["tie", "tie", "a"])) == "tie"
    assert majority(["a", "b"]) == "tie"
    assert majority(["a", "tie"]) == "tie"
    assert majority([]) == "tie"


def test_majority_names_a_choice_it_does_not_know():
    with pytest.raises(ValueError, match="got 'left'"):
        majority(["a", "left"])
