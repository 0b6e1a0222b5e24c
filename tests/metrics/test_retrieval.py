"""Ranking and Recall@K on small hand-built cases whose answers are worked out in the comments.

Most cases use 1-D embeddings: with query ``[1.0]`` an image's score is simply its gallery value.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hpbench.metrics.retrieval import (
    cirr_rankings,
    cirr_recall,
    cirr_recall_from_ranks,
    cirr_submission,
    fashioniq_recall,
    fashioniq_recall_from_embeddings,
    recall_at_k,
    score_blocks,
    subset_ranks_from_scores,
    target_ranks,
    target_ranks_from_rankings,
    target_ranks_from_scores,
    topk_from_embeddings,
    topk_from_scores,
)


def column(values: list[float]) -> np.ndarray:
    """1-D embeddings: a gallery whose scores against query [1.0] are ``values``."""
    return np.asarray(values, dtype=np.float32)[:, None]


# ---- top-k and ranks ---------------------------------------------------------------------------------------


def test_topk_orders_by_descending_score_then_by_gallery_index() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.1, 0.9]])
    idx, val = topk_from_scores(scores, 4)
    # 0.9 at 1 and 4 (index order), then 0.5 at 0 and 2
    assert idx.tolist() == [[1, 4, 0, 2]]
    assert val.tolist() == [[0.9, 0.9, 0.5, 0.5]]


def test_topk_breaks_a_tie_at_the_cut_by_gallery_index() -> None:
    # k = 2: the second place is shared by indices 1, 3 and 5; index 1 must win it
    scores = np.array([[0.2, 0.7, 0.9, 0.7, 0.1, 0.7]])
    for _ in range(5):
        idx, _ = topk_from_scores(scores, 2)
        assert idx.tolist() == [[2, 1]]


def test_topk_removes_the_excluded_item_from_each_row_only() -> None:
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7]])
    idx, _ = topk_from_scores(scores, 2, exclude=[0, -1])
    assert idx.tolist() == [[1, 2], [0, 1]]


def test_topk_rejects_a_k_larger_than_what_remains_of_the_gallery() -> None:
    with pytest.raises(ValueError, match="k must be between 1 and 2"):
        topk_from_scores(np.zeros((1, 3)), 3, exclude=[1])
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        topk_from_scores(np.zeros((1, 3)), 0)


def test_topk_from_embeddings_matches_a_full_stable_sort_across_small_chunks() -> None:
    rng = np.random.default_rng(1)
    # coarse values make many exact ties
    queries = rng.integers(-2, 3, size=(17, 4)).astype(np.float32)
    gallery = rng.integers(-2, 3, size=(23, 4)).astype(np.float32)
    exclude = rng.integers(-1, 23, size=17)
    idx, val = topk_from_embeddings(queries, gallery, 7, chunk=4, exclude=exclude)
    scores = queries @ gallery.T
    for i in range(17):
        expected = [j for j in np.argsort(-scores[i], kind="stable") if j != exclude[i]][:7]
        assert idx[i].tolist() == expected
        assert val[i].tolist() == scores[i, expected].tolist()


def test_a_gallery_with_several_vectors_per_image_scores_by_its_best_vector() -> None:
    queries = np.array([[1.0, 0.0]], dtype=np.float32)
    gallery = np.array(
        [[[0.1, 0.0], [0.3, 0.0]], [[0.2, 0.0], [-1.0, 0.0]], [[0.0, 1.0], [0.05, 0.0]]], dtype=np.float32
    )
    (_, block), *_ = list(score_blocks(queries, gallery))
    assert block[0].tolist() == pytest.approx([0.3, 0.2, 0.05])
    idx, _ = topk_from_embeddings(queries, gallery, 3)
    assert idx.tolist() == [[0, 1, 2]]


def test_score_blocks_name_a_non_finite_embedding() -> None:
    gallery = np.ones((3, 2), dtype=np.float32)
    gallery[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"gallery contain a NaN or infinite value at index \(2, 1\)"):
        list(score_blocks(np.ones((1, 2)), gallery))


def test_target_rank_counts_higher_scores_and_equal_scores_earlier_in_the_gallery() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]] * 3)
    # target 2: 0.9 (index 1) is higher, 0.5 at index 0 is tied and earlier -> rank 2
    # target 0: only index 1 is ahead -> rank 1; target 4: everything else is ahead -> rank 4
    assert target_ranks_from_scores(scores, [2, 0, 4]).tolist() == [2, 1, 4]


def test_removing_an_item_ahead_of_the_target_moves_it_up_by_one() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]] * 3)
    # exclude the 0.9 (ahead), the tied 0.5 at index 3 (behind), nothing
    ranks = target_ranks_from_scores(scores, [2, 2, 2], exclude=[1, 3, -1])
    assert ranks.tolist() == [1, 2, 2]


def test_target_ranks_agree_with_positions_in_the_top_k_lists() -> None:
    rng = np.random.default_rng(2)
    queries = rng.integers(-1, 2, size=(40, 3)).astype(np.float32)
    gallery = rng.integers(-1, 2, size=(15, 3)).astype(np.float32)
    target = rng.integers(0, 15, size=40)
    exclude = np.where(rng.random(40) < 0.5, (target + 1) % 15, -1)
    ranks = target_ranks(queries, gallery, target, exclude=exclude, chunk=6)
    idx, _ = topk_from_embeddings(queries, gallery, 14, exclude=exclude, chunk=6)
    for i in range(40):
        assert idx[i].tolist().index(target[i]) == ranks[i]


def test_a_target_that_is_removed_from_its_ranking_is_refused() -> None:
    with pytest.raises(ValueError, match="query row 1: its target 0 is removed from its ranking"):
        target_ranks_from_scores(np.zeros((2, 3)), [1, 0], exclude=[0, 0])


def test_a_target_outside_the_gallery_is_refused_with_its_position() -> None:
    with pytest.raises(ValueError, match=r"target\[1\] = 7 is not a gallery index in \[0, 2\]"):
        target_ranks(np.ones((2, 1)), column([1, 2, 3]), [0, 7])


def test_recall_at_k_is_the_percentage_of_ranks_below_k() -> None:
    assert recall_at_k([0, 1, 9, 10, 49, 50], (1, 10, 50)) == {
        1: pytest.approx(100 / 6),
        10: 50.0,
        50: 500 / 6,
    }
    with pytest.raises(ValueError, match="non-empty"):
        recall_at_k([], (10,))


# ---- FashionIQ ---------------------------------------------------------------------------------------------


def test_fashioniq_recall_averages_categories_without_weighting_by_their_size() -> None:
    result = fashioniq_recall({"dress": [0, 20], "shirt": [60], "toptee": [5, 15, 45, 49]})
    assert result["dress"] == {"R@10": 50.0, "R@50": 100.0}
    assert result["shirt"] == {"R@10": 0.0, "R@50": 0.0}
    assert result["toptee"] == {"R@10": 25.0, "R@50": 100.0}
    # (50 + 0 + 25) / 3 = 25 and (100 + 0 + 100) / 3 = 66.67; pooled over queries R@10 would be 2/7
    assert result["mean"] == {"R@10": 25.0, "R@50": pytest.approx(200 / 3)}
    assert result["avg"] == pytest.approx((25.0 + 200 / 3) / 2)
    json.dumps(result)


def test_fashioniq_keeps_the_reference_image_in_the_ranking() -> None:
    # Gallery: the reference image (index 0) scores highest, then 9 others, then the target (index 10).
    # With the reference kept the target's rank is 10: a miss at R@10 (CIRR's protocol would give a hit).
    gallery = column([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0.5] + [0.0] * 40)
    result = fashioniq_recall_from_embeddings({"dress": (np.ones((1, 1)), gallery, np.array([10]))})
    assert result["dress"] == {"R@10": 0.0, "R@50": 100.0}
    assert target_ranks(np.ones((1, 1)), gallery, [10], exclude=[0]).tolist() == [9]


def test_fashioniq_refuses_a_category_without_queries() -> None:
    with pytest.raises(ValueError, match="category 'shirt'"):
        fashioniq_recall({"dress": [1], "shirt": []})
    with pytest.raises(ValueError, match="at least one category"):
        fashioniq_recall({})


# ---- CIRR --------------------------------------------------------------------------------------------------

# Gallery values (scores): index 0..6
CIRR_GALLERY = column([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])


def test_cirr_recall_removes_the_reference_before_ranking_and_ranks_subsets() -> None:
    queries = np.ones((3, 1), dtype=np.float32)
    reference = [0, 5, 6]
    target = [1, 2, 6 - 1]  # query 2's target is index 5
    members = [[0, 1, 3], [5, 2, 3, 4], [6, 5, 0, 1]]
    # query 0: ranking without ref 0 -> 1,2,3,..: target 1 at rank 0; subset {1,3} -> rank 0
    # query 1: ranking without 5 -> 0,1,2: target 2 at rank 2; subset {2,3,4} -> rank 0
    # query 2: ranking without 6 -> 0..5: target 5 at rank 5; subset {5,0,1} -> rank 2
    result = cirr_recall(queries, CIRR_GALLERY, reference=reference, target=target, members=members)
    assert result == {
        "R@1": pytest.approx(100 / 3),
        "R@5": pytest.approx(200 / 3),
        "R@10": 100.0,
        "R@50": 100.0,
        "Rsubset@1": pytest.approx(200 / 3),
        "Rsubset@2": pytest.approx(200 / 3),
        "Rsubset@3": 100.0,
        "avg": pytest.approx((200 / 3 + 200 / 3) / 2),
    }


def test_the_subset_rank_ignores_the_reference_even_when_it_scores_highest() -> None:
    scores = np.array([[0.9, 0.8, 0.7]])
    assert subset_ranks_from_scores(scores, [2], [[0, 1, 2]], exclude=[0]).tolist() == [1]
    assert subset_ranks_from_scores(scores, [2], [[0, 1, 2]]).tolist() == [2]
    # padding with -1 is ignored
    assert subset_ranks_from_scores(scores, [2], np.array([[2, -1, -1]])).tolist() == [0]


def test_cirr_refuses_a_target_outside_its_subset_or_equal_to_its_reference() -> None:
    with pytest.raises(ValueError, match="query 0: the target 3 is not among its subset members"):
        cirr_recall(np.ones((1, 1)), CIRR_GALLERY, reference=[0], target=[3], members=[[0, 1]])
    with pytest.raises(ValueError, match="query 0: the target 0 is also its reference image"):
        cirr_recall(np.ones((1, 1)), CIRR_GALLERY, reference=[0], target=[0], members=[[0, 1]])


def test_cirr_recall_from_ranks_reports_the_headline_average() -> None:
    result = cirr_recall_from_ranks([0, 4, 7, 60], [0, 1, 2, 0])
    assert result["R@1"] == 25.0 and result["R@5"] == 50.0 and result["R@10"] == 75.0
    assert result["Rsubset@1"] == 50.0 and result["Rsubset@2"] == 75.0 and result["Rsubset@3"] == 100.0
    assert result["avg"] == 50.0


def test_cirr_rankings_and_submission_files_have_the_official_shape() -> None:
    names = [f"test1-{i}-img0" for i in range(60)]
    gallery = column(list(np.linspace(1.0, 0.0, 60)))  # index order = score order
    queries = np.ones((2, 1), dtype=np.float32)
    top, subset = cirr_rankings(queries, gallery, reference=[0, 3], members=[[0, 9, 4, 7], [3, 5]])
    assert top.shape == (2, 50) and top[0, 0] == 1 and 0 not in top[0] and 3 not in top[1]
    assert top[1, :4].tolist() == [0, 1, 2, 4]
    assert subset.tolist() == [[4, 7, 9], [5, -1, -1]]

    top_names = [[names[j] for j in row] for row in top]
    recall, recall_subset = cirr_submission(["12", 7], top_names, [["a", "b", "c"], ["d", "e", "f"]])
    assert recall["version"] == "rc2" and recall["metric"] == "recall"
    assert recall_subset["version"] == "rc2" and recall_subset["metric"] == "recall_subset"
    assert set(recall) == {"version", "metric", "12", "7"}
    assert recall["12"] == top_names[0] and len(recall["7"]) == 50
    assert recall_subset["7"] == ["d", "e", "f"]
    assert json.loads(json.dumps(recall)) == recall


def test_cirr_submission_refuses_short_lists_and_repeated_pair_ids() -> None:
    top = [[f"n{i}" for i in range(50)]]
    with pytest.raises(ValueError, match=r"subset_ranked_names_top3\[0\] \(pair 1\) must hold 3 names, got 2"):
        cirr_submission([1], top, [["a", "b"]])
    with pytest.raises(ValueError, match=r"ranked_names_top50\[0\] \(pair 1\) must hold 50 names, got 49"):
        cirr_submission([1], [top[0][:49]], [["a", "b", "c"]])
    with pytest.raises(ValueError, match="pair id 1 appears twice"):
        cirr_submission([1, "1"], top * 2, [["a", "b", "c"]] * 2)
    with pytest.raises(ValueError, match="repeats an image name"):
        cirr_submission([1], top, [["a", "a", "c"]])


# ---- rankings given as lists (score files) -----------------------------------------------------------------


def test_a_submitted_ranking_gives_the_targets_position_or_the_depth_when_it_is_missing() -> None:
    rankings = [["b", "a", "c"], ["c", "b"], []]
    # "a" is second (rank 1); "a" is absent from a 3-deep list (rank 3); an empty list misses too
    assert target_ranks_from_rankings(rankings, ["a", "a", "z"], depth=3).tolist() == [1, 3, 3]
    with pytest.raises(ValueError, match=r"rankings\[0\] repeats"):
        target_ranks_from_rankings([["a", "a"]], ["a"], depth=3)
    with pytest.raises(ValueError, match="more than the depth 1"):
        target_ranks_from_rankings([["a", "b"]], ["a"], depth=1)


def test_recall_from_submitted_top_lists_equals_recall_from_the_embeddings_that_ranked_them() -> None:
    rng = np.random.default_rng(3)
    queries = rng.normal(size=(30, 4)).astype(np.float32)
    gallery = rng.normal(size=(60, 4)).astype(np.float32)
    target = rng.integers(0, 60, size=30)
    top, _ = topk_from_embeddings(queries, gallery, 10)
    from_lists = target_ranks_from_rankings(top.tolist(), target.tolist(), depth=10)
    exact = target_ranks(queries, gallery, target)
    assert fashioniq_recall({"dress": from_lists})["dress"]["R@10"] == fashioniq_recall({"dress": exact})["dress"][
        "R@10"
    ]
    assert (np.minimum(exact, 10) == from_lists).all()
