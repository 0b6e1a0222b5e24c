"""Set scores, preference ratio, agreement and bootstrap intervals on hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hpbench.metrics.preference import (
    agreement,
    agreement_value,
    bootstrap_ci,
    preference_ratio,
    preference_summary,
    set_scores,
)


def test_a_set_score_is_the_mean_relevance_of_its_images() -> None:
    assert set_scores(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.3]])).tolist() == pytest.approx([2.0, 0.1])
    assert set_scores([[1.0, 3.0], [5.0], [0.2, 0.4, 0.6]]).tolist() == pytest.approx([2.0, 5.0, 0.4])


def test_a_set_without_images_is_refused() -> None:
    with pytest.raises(ValueError, match="set 1 must be a non-empty"):
        set_scores([[1.0], []])


def test_preference_ratio_counts_only_pairs_the_model_scores_set_1_higher() -> None:
    score1 = [3.0, 1.0, 2.0, 5.0, 0.9]
    score2 = [1.0, 2.0, 2.0, 4.0, 0.1]
    human_pref_is_1 = [True, True, False, False, True]
    # model 1 > 2 at pairs 0, 3, 4; the human preferred set 1 at 0 and 4 -> 2/3. Pair 1 (model 2 > 1, human 1)
    # and pair 2 (model tie) do not count at all.
    assert preference_ratio(score1, score2, human_pref_is_1) == pytest.approx(2 / 3)


def test_preference_ratio_is_zero_when_no_pair_scores_set_1_higher() -> None:
    assert preference_ratio([1.0, 2.0], [1.0, 3.0], [True, True]) == 0.0
    assert preference_ratio([], [], np.array([], dtype=bool)) == 0.0


def test_preference_ratio_is_computed_per_row_for_batches() -> None:
    s1 = np.array([[2.0, 2.0], [0.0, 2.0]])
    s2 = np.array([[1.0, 1.0], [1.0, 1.0]])
    h = np.array([[True, False], [True, True]])
    assert preference_ratio(s1, s2, h).tolist() == [0.5, 1.0]


def test_agreement_counts_model_ties_as_half_and_leaves_human_ties_out() -> None:
    score1 = [0.9, 0.8, 0.5, 0.1, 0.7]
    score2 = [0.1, 0.2, 0.5, 0.6, 0.1]
    human = [1, 2, 2, 2, 0]
    # pair 0: model 1, human 1 -> 1; pair 1: model 1, human 2 -> 0; pair 2: model tie -> 0.5;
    # pair 3: model 2, human 2 -> 1; pair 4: human tie -> left out.  (1 + 0 + 0.5 + 1) / 4
    result = agreement(score1, score2, human)
    assert result == {"agreement": 0.625, "pairs": 4, "human_ties": 1, "model_ties": 1}


def test_agreement_is_the_same_whichever_set_is_shown_first() -> None:
    score1 = np.array([0.9, 0.8, 0.5, 0.1])
    score2 = np.array([0.1, 0.2, 0.5, 0.6])
    human = np.array([1, 2, 2, 2])
    swapped = np.where(human == 1, 2, 1)
    assert agreement_value(score1, score2, human) == agreement_value(score2, score1, swapped)


def test_agreement_is_undefined_when_every_human_called_a_tie() -> None:
    assert agreement([0.3, 0.1], [0.2, 0.2], [0, 0]) == {
        "agreement": None,
        "pairs": 0,
        "human_ties": 2,
        "model_ties": 0,
    }


def test_agreement_refuses_a_human_code_other_than_1_2_or_0() -> None:
    with pytest.raises(ValueError, match=r"human\[2\] = 3: expected 1, 2 or 0"):
        agreement([0.1, 0.2, 0.3], [0.0, 0.0, 0.0], [1, 2, 3])


def test_agreement_refuses_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match=r"score1 has shape \(2,\) but human has shape \(3,\)"):
        agreement([0.1, 0.2], [0.0, 0.0], [1, 2, 1])


def _pairs(n: int = 60, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score1 = rng.random(n)
    score2 = rng.random(n)
    human = np.where(rng.random(n) < 0.7, np.where(score1 > score2, 1, 2), np.where(score1 > score2, 2, 1))
    human[rng.random(n) < 0.1] = 0
    return score1, score2, human


def test_bootstrap_is_deterministic_under_a_seed_and_covers_the_point_estimate() -> None:
    score1, score2, human = _pairs()
    first = bootstrap_ci(agreement_value, score1, score2, human, rounds=500, seed=7)
    again = bootstrap_ci(agreement_value, score1, score2, human, rounds=500, seed=7)
    other = bootstrap_ci(agreement_value, score1, score2, human, rounds=500, seed=8)
    point = agreement_value(score1, score2, human)
    assert first == again
    assert first != other
    assert first[0] < point < first[1]


def test_bootstrap_uses_the_percentiles_of_resampled_pairs() -> None:
    score1, score2, human = _pairs(n=25)
    pref1 = human == 1
    low, high = bootstrap_ci(preference_ratio, score1, score2, pref1, rounds=300, seed=11, level=0.9)
    # the same resamples, one round at a time
    idx = np.random.default_rng(11).integers(0, 25, size=(300, 25))
    values = [preference_ratio(score1[i], score2[i], pref1[i]) for i in idx]
    assert (low, high) == pytest.approx(tuple(np.quantile(values, [0.05, 0.95])))


def test_bootstrap_of_a_statistic_that_cannot_vary_has_no_width() -> None:
    ones = np.ones(10)
    assert bootstrap_ci(lambda x: x.mean(axis=-1), ones, rounds=50) == (1.0, 1.0)


def test_bootstrap_refuses_an_empty_sample_and_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="at least one pair"):
        bootstrap_ci(preference_ratio, np.array([]), np.array([]), np.array([], dtype=bool))
    with pytest.raises(ValueError, match="same length"):
        bootstrap_ci(preference_ratio, np.ones(3), np.ones(2), np.ones(3, dtype=bool))


def test_the_preference_summary_reports_both_scores_with_intervals_as_json() -> None:
    score1, score2, human = _pairs()
    summary = preference_summary(score1, score2, human, rounds=200, seed=0)
    json.dumps(summary)
    ratio = summary["preference_ratio"]
    assert ratio["value"] == preference_ratio(score1, score2, human == 1)
    assert ratio["lower"] <= ratio["value"] <= ratio["upper"]
    agree = summary["agreement"]
    assert agree["value"] == agreement(score1, score2, human)["agreement"]
    assert agree["pairs"] + agree["human_ties"] == summary["n"] == 60
