"""The demo benchmark's page explains itself (hpbench/leaderboard/demo_caption.py, plots.py)."""

from __future__ import annotations

import pytest

from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
from hpbench.leaderboard.demo_caption import qure_sentence, recall_interval, text_only_sentence
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.plots import agreement_svg
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store


def row(model, agreement, low, high):
    return {"model": model, "agreement": agreement, "agreement_low": low, "agreement_high": high}


def test_the_recall_interval_is_the_normal_approximation_over_queries():
    low, high = recall_interval({"dress": 50.0, "shirt": 50.0}, {"dress": 100, "shirt": 100}, 10)
    half = 100 * 1.96 * (2 * 0.25 / 100) ** 0.5 / 2  # sd of the mean of two shares of 0.5 over 100 queries each
    assert (low, high) == pytest.approx((50 - half, 50 + half))
    assert recall_interval({"dress": 100.0}, {"dress": 10}, 10) == (100.0, 100.0)
    assert recall_interval({"dress": 50.0}, {}, 10) is None


def test_the_sentence_says_plainly_when_qure_is_not_ahead():
    text = qure_sentence([row("demo-qure", 0.70, 0.65, 0.75), row("demo-contrastive", 0.72, 0.67, 0.77)])
    assert text.startswith("Unlike in the paper, demo-qure does not agree") and "0.700 vs 0.720" in text


def test_the_sentence_says_when_qure_is_ahead_and_whether_the_paired_test_separates_them():
    same_rank = qure_sentence([{**row("demo-qure", 0.84, 0.80, 0.88), "rank": 1},
                               {**row("demo-contrastive", 0.72, 0.68, 0.76), "rank": 1}])
    assert same_rank.startswith("As in the paper") and "does not separate them" in same_rank
    # intervals overlap, yet the paired test ranks qure above: the data do settle it
    clear = qure_sentence([{**row("demo-qure", 0.74, 0.70, 0.78), "rank": 1},
                           {**row("demo-contrastive", 0.72, 0.68, 0.76), "rank": 2}])
    assert clear.startswith("As in the paper") and "not settle" not in clear
    assert qure_sentence([row("demo-qure", 0.84, 0.80, 0.88)]) == ""


def test_the_plot_labels_the_chance_line():
    svg = agreement_svg([row("m", 0.7, 0.6, 0.8)], ceiling=0.85)
    assert ">chance</text>" in svg and "human ceiling 0.850" in svg


@pytest.mark.django_db
def test_the_demo_benchmark_page_says_what_the_data_the_line_and_the_baselines_are(client, tmp_path):
    dataset = Dataset.objects.create(name="demo", kind=Dataset.Kind.DEMO, image_root=str(tmp_path))
    images = [
        Image.objects.create(dataset=dataset, name=f"i{n}", category="dress", split="val", file_path=f"i{n}.png")
        for n in range(5)
    ]
    for n in range(4):
        Query.objects.create(
            dataset=dataset,
            split="val",
            category="dress",
            reference=images[0],
            target=images[1 + n],
            captions=["is red", "is a red one"],
            key=f"q{n}",
        )
    ids = [image.pk for image in images]
    pairs = [
        PairSpec(reference_id=ids[0], text=f"t{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]), preference=1 + n % 2)
        for n in range(6)
    ]
    benchmark = benchmark_store(
        name="demo-human-preferences", source="imported", dataset=dataset, pairs=pairs
    ).benchmark
    for name, set1 in (("demo-qure", [1, 0, 1, 0, 1, 0]), ("demo-contrastive", [1, 0, 1, 0, 0, 1])):
        model = ModelEntry.objects.create(name=name, family="demo", is_baseline=name == "demo-contrastive")
        score, _ = ModelScore.objects.get_or_create(model=model, benchmark=benchmark)
        model_score_store(score_id=score.pk, set1=set1, set2=[0.5] * 6)
        RetrievalRun.objects.create(
            model=model,
            dataset=dataset,
            split="val",
            status="finished",
            metrics={"dress": {"R@10": 50.0, "R@50": 100.0}, "mean": {"R@10": 50.0, "R@50": 100.0}, "avg": 75.0},
        )
    html = client.get("/leaderboard/demo-human-preferences/").content.decode()
    assert "procedurally drawn garments" in html and "simulated annotators" in html
    assert "0.5 is chance" in html and ">chance</text>" in html
    assert "image-only" in html and "text-only" in html and "systematically prefers the set people reject" in html
    assert "As in the paper, demo-qure agrees with the simulated crowd more often than demo-contrastive" in html
    assert "demo-qure 50.0 [1.0, 99.0] / 100.0 [100.0, 100.0]" in html


def test_a_text_only_baseline_level_with_a_composed_model_is_explained():
    rows = [
        row("demo-qure", 0.72, 0.6, 0.8),
        row("demo-contrastive", 0.76, 0.7, 0.8),
        row("demo-text-only", 0.75, 0.7, 0.8),
    ]
    assert text_only_sentence(rows).startswith("demo-text-only agrees with the crowd as often as a trained composed")
    rows[2] = row("demo-text-only", 0.70, 0.6, 0.8)
    assert text_only_sentence(rows) == ""
