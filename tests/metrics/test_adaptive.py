"""Rules for fewer votes (hpbench/metrics/adaptive.py) and weighted agreement (hpbench/metrics/preference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hpbench.metrics.adaptive import (
    bt_strengths,
    informative_draw,
    overlap_stop,
    score_evidence,
    selection_probabilities,
    weighted_agreement,
)
from hpbench.metrics.preference import agreement_value


def test_two_of_two_stop_and_a_split_asks_to_the_maximum():
    rule = {"min_votes": 2, "max_votes": 3, "confidence": 0.8}
    assert overlap_stop(1, 0, **rule) is None
    assert overlap_stop(2, 0, **rule) == "decided"
    assert overlap_stop(1, 1, **rule) is None
    assert overlap_stop(2, 1, **rule) == "max_votes"


def test_weighted_agreement_equals_a_hand_computation():
    # Scores: pair 0 model says set 1, pair 1 set 2, pair 2 a model tie (0.5), pair 3 human tie (left out).
    s1, s2 = [0.9, 0.1, 0.5, 0.7], [0.2, 0.8, 0.5, 0.1]
    human = [1, 1, 2, 0]
    w = [2.0, 0.5, 1.0, 3.0]
    # credits 1, 0, 0.5 with weights 2, 0.5, 1 -> (2 + 0 + 0.5) / 3.5
    assert agreement_value(s1, s2, human, weights=w) == pytest.approx(2.5 / 3.5)
    assert agreement_value(s1, s2, human, weights=[1, 1, 1, 1]) == agreement_value(s1, s2, human)
    prefers_a = np.array([[True], [False], [True]])
    assert weighted_agreement(prefers_a, [True, True, False], [2.0, 0.5, 1.0])[0] == pytest.approx(2 / 3.5)


def test_an_informative_draw_gives_each_pick_its_inverse_probability_relative_to_uniform():
    p = np.array([0.5, 0.9, 0.99, 0.5])
    d = np.zeros(4)
    pi = selection_probabilities(p, d, random_share=0.25)
    picks, weights = informative_draw(p, d, take=2, random_share=0.25, rng=np.random.default_rng(1))
    assert weights == pytest.approx(1 / (pi[picks] * 4))
    again, _ = informative_draw(p, d, take=2, random_share=0.25, rng=np.random.default_rng(1))
    assert list(picks) == list(again)
    _, uniform = informative_draw(p, d, take=4, random_share=1.0, rng=np.random.default_rng(1))
    assert uniform == pytest.approx([1.0] * 4)


def test_score_evidence_standardises_each_scorer_and_reads_its_preferences():
    gap, prefers = score_evidence([[1.0, -1.0], [2.0, 2.0]])
    assert gap == pytest.approx([1.5, 0.5])  # (1 + 2) / 2, (-1 + 2) / 2; a constant scorer's std counts as 1
    assert prefers.tolist() == [[True, True], [False, True]]


def test_bradley_terry_strengths_from_votes_match_the_odds_and_ignore_how_rows_are_split():
    # Model 0 beat model 1 in 3 of 4 votes: strengths differ by about ln 3 (a light ridge shrinks it a little).
    one = bt_strengths([0], [1], [3], [4], 2)
    split = bt_strengths([0, 0, 1], [1, 1, 0], [2, 1, 0], [2, 2, 0], 2)
    assert one[0] - one[1] == pytest.approx(np.log(3), abs=0.05)
    assert split == pytest.approx(one)
    assert bt_strengths([], [], [], [], 3).tolist() == [0.0, 0.0, 0.0]
