"""The hard-negative rule on hand-made score vectors."""

from __future__ import annotations

import pytest
import torch

from models_zoo.qure.negatives import FALLBACK_BELOW, FALLBACK_CORPUS, RULE, hard_negative_sets, rank_with_target_first


def one(scores: list[float], target: int) -> tuple[list[int], int]:
    result = hard_negative_sets(torch.tensor([scores]), [target])
    return result.sets[0].tolist(), int(result.outcome[0])


def test_it_takes_the_images_between_the_two_largest_drops_below_the_target():
    # ranks: target(1.0) | 0.9 0.85 | 0.5 0.45 0.4 | 0.1  -> drops below: .05 .35 .05 .05 .30
    assert one([1.0, 0.9, 0.85, 0.5, 0.45, 0.4, 0.1], 0) == ([3, 4, 5], RULE)


def test_it_ranks_by_score_not_by_corpus_order():
    scores = [0.45, 0.1, 0.9, 1.0, 0.5, 0.85, 0.4]  # same values as above, shuffled; target = index 3
    assert one(scores, 3) == ([4, 0, 6], RULE)


def test_the_drop_from_the_target_to_the_next_image_does_not_count():
    # The huge target->0.2 drop must be ignored; below it: .2 .19 | .10 .09 | .0 -> drops .01 .09 .01 .09
    negatives, outcome = one([1.0, 0.2, 0.19, 0.10, 0.09, 0.0], 0)
    assert outcome == RULE
    assert negatives == [3, 4]


def test_images_ranked_above_the_target_are_never_negatives():
    negatives, outcome = one([0.95, 0.99, 0.9, 0.5, 0.45, 0.1, 0.05], 2)
    assert outcome == RULE
    assert not {0, 1, 2} & set(negatives)
    assert negatives == [4, 5]  # drops below target: .4 .05 .35 .05 -> largest pair (0, 2): ranks 1..2 below


def test_it_tries_the_next_pair_when_the_two_largest_drops_are_adjacent():
    # below target: 9 | 6 | 3 2.75 2.5 2 -> drops 3 3 .25 .25 .5 (exact in binary floating point)
    # by size: d0(3), d1(3), d4(.5), d2, d3; (d0, d1) are adjacent -> next pair (d1, d4) -> ranks 2..4 below
    negatives, outcome = one([10.0, 9.0, 6.0, 3.0, 2.75, 2.5, 2.0], 0)
    assert outcome == RULE
    assert negatives == [3, 4, 5]


def test_the_set_always_holds_at_least_two_images_when_the_rule_applies():
    torch.manual_seed(0)
    scores = torch.rand(200, 30)
    targets = torch.randint(0, 30, (200,))
    result = hard_negative_sets(scores, targets)
    for row, (negatives, outcome) in enumerate(zip(result.sets, result.outcome.tolist(), strict=True)):
        assert int(targets[row]) not in negatives.tolist()
        if outcome == RULE:
            assert len(negatives) >= 2
            assert len(set(negatives.tolist())) == len(negatives)


def test_equal_drops_are_taken_nearest_the_target_first():
    # below target: 9 8.5 8.25 7.75 7.5 7 -> drops .5 .25 .5 .25 .5: the three .5 drops tie; nearest first
    # gives the pair (d0, d2) -> ranks 1..2 below the target (farthest first would give ranks 3..4).
    assert one([10.0, 9.0, 8.5, 8.25, 7.75, 7.5, 7.0], 0) == ([2, 3], RULE)


def test_drops_monotone_in_position_fall_back_to_every_image_below_the_target():
    # evenly spaced scores: all drops equal, every neighbouring pair in size order is adjacent.
    assert one([1.0, 0.875, 0.75, 0.625, 0.5, 0.375], 0) == ([1, 2, 3, 4, 5], FALLBACK_BELOW)
    # all scores tied below the target: zero drops, same fallback.
    assert one([1.0, 0.5, 0.5, 0.5, 0.5], 0) == ([1, 2, 3, 4], FALLBACK_BELOW)


def test_images_tied_with_the_target_count_as_below_it():
    ranked = rank_with_target_first(torch.tensor([[0.5, 0.7, 0.5, 0.5]]), torch.tensor([2]))
    assert ranked.tolist() == [[1, 2, 0, 3]]
    # target 2 ties with 0 and 3: they are ranked just below it, in corpus order.
    negatives, outcome = one([0.5, 0.7, 0.5, 0.5, 0.2, 0.19, 0.0], 2)
    assert outcome == RULE
    # below target: 0.5(0) 0.5(3) 0.2(4) 0.19(5) 0.0(6): drops 0 .3 .01 .19 -> (d1, d3) -> ranks of 4, 5
    assert negatives == [4, 5]


def test_fewer_than_three_images_below_the_target_fall_back_to_all_of_them():
    assert one([0.1, 1.0, 0.9, 0.2], 2) == ([3, 0], FALLBACK_BELOW)
    assert one([0.1, 1.0, 0.9, 0.2, 0.05], 2) == ([3, 0, 4], FALLBACK_BELOW)


def test_a_target_ranked_last_falls_back_to_the_whole_corpus_minus_the_target():
    assert one([0.3, 0.9, 0.1, 0.5], 2) == ([0, 1, 3], FALLBACK_CORPUS)


def test_rows_are_handled_independently_in_one_call():
    scores = torch.tensor([[1.0, 0.9, 0.85, 0.5, 0.45, 0.4, 0.1], [0.3, 0.9, 0.1, 0.5, 0.2, 0.6, 0.7]])
    result = hard_negative_sets(scores, [0, 2])
    assert result.sets[0].tolist() == [3, 4, 5]
    assert result.sets[1].tolist() == [0, 1, 3, 4, 5, 6]
    assert result.outcome.tolist() == [RULE, FALLBACK_CORPUS]
    assert result.sizes().tolist() == [3, 6]


@pytest.mark.parametrize(
    ("scores", "targets", "message"),
    [
        (torch.tensor([[1.0]]), [0], "at least 2 images"),
        (torch.tensor([[1.0, 0.5]]), [2], "target indices"),
        (torch.tensor([[1.0, float("nan")]]), [0], "NaN"),
        (torch.tensor([[1.0, 0.5]]), [0, 1], "targets"),
    ],
)
def test_it_rejects_bad_input_with_a_clear_message(scores, targets, message):
    with pytest.raises(ValueError, match=message):
        hard_negative_sets(scores, targets)
