"""The leaderboard's ranks come from paired tests on the pairs two models share, with each row's difference to the
row above; its recall column names the split it comes from (JSON, CSV and page)."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from rest_framework.test import APIClient

from hpbench.catalog.models import ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store

pytestmark = pytest.mark.django_db

N_PAIRS = 400


def _benchmark(fiq_dataset, *, makers: dict[int, int] | None = None, name: str = "paired",
               weights: np.ndarray | None = None):
    """``N_PAIRS`` pairs, people preferring set 1 and set 2 in turn; ``makers``: position -> model that made set 1;
    ``weights``: the pairs' selection weights."""
    from tests.leaderboard.conftest import make_images

    ids = list(make_images(fiq_dataset, {f"p{n}": "dress" for n in range(5)}).values())
    makers = makers or {}
    w = np.ones(N_PAIRS) if weights is None else weights
    pairs = [PairSpec(reference_id=ids[0], text=f"t{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                      preference=1 + n % 2, set1_model_id=makers.get(n), selection_weight=float(w[n]))
             for n in range(N_PAIRS)]
    return benchmark_store(name=name, source="imported", dataset=fiq_dataset, pairs=pairs).benchmark


def _score(model, benchmark, right: np.ndarray) -> ModelScore:
    """Store a score whose model prefers the people's set exactly where ``right`` is true."""
    human = np.array([1 + n % 2 for n in range(N_PAIRS)])
    prefers_1 = np.where(right, human == 1, human == 2)
    score, _ = ModelScore.objects.get_or_create(model=model, benchmark=benchmark)
    return model_score_store(score_id=score.pk, set1=np.where(prefers_1, 1.0, 0.0).tolist(), set2=[0.5] * N_PAIRS)


def test_models_whose_intervals_overlap_get_different_ranks_when_the_paired_test_separates_them(fiq_dataset):
    benchmark = _benchmark(fiq_dataset)
    a = ModelEntry.objects.create(name="a", family="demo")
    b = ModelEntry.objects.create(name="b", family="demo")
    right_a = np.arange(N_PAIRS) < 280  # 70%
    right_b = np.arange(N_PAIRS) < 256  # 64%: b agrees wherever a does, except on 24 pairs where only a is right
    score_a, score_b = _score(a, benchmark, right_a), _score(b, benchmark, right_b)
    assert score_b.agreement_high > score_a.agreement_low  # the 95% intervals overlap (the old rule: both rank 1)

    board = APIClient().get("/api/leaderboard/benchmarks/paired").json()
    rows = {r["model"]: r for r in board["rows"]}
    assert [r["model"] for r in board["rows"]] == ["a", "b"]
    assert rows["a"]["rank"] == 1 and rows["b"]["rank"] == 2
    # by definition: 24 discordant pairs, all for a -> exact McNemar p = 2 * 0.5 ** 24; one comparison, Holm = raw
    assert rows["b"]["above_model"] == "a" and rows["b"]["above_pairs"] == N_PAIRS
    assert rows["b"]["above_difference"] == pytest.approx(24 / N_PAIRS)
    assert rows["b"]["above_p"] == pytest.approx(2 * 0.5**24) == rows["b"]["above_p_holm"]
    # paired bootstrap by hand: resample the 400 pairs' differences (24 ones, 376 zeros)
    x = (right_a.astype(float) - right_b)[np.random.default_rng(5).integers(0, N_PAIRS, (20000, N_PAIRS))].mean(axis=1)
    low, high = np.quantile(x, [0.025, 0.975])
    assert rows["b"]["above_difference_low"] == pytest.approx(low, abs=0.004)
    assert rows["b"]["above_difference_high"] == pytest.approx(high, abs=0.004)
    assert rows["a"]["above_difference"] is None
    assert board["ranking"]["test"] == "exact McNemar test" and board["ranking"]["correction"] == "Holm"

    csv_rows = list(csv.DictReader(io.StringIO(APIClient().get("/api/leaderboard/benchmarks/paired/csv").content
                                               .decode())))
    assert [(r["model"], r["rank"], r["above_model"]) for r in csv_rows] == [("a", "1", ""), ("b", "2", "a")]
    assert float(csv_rows[1]["above_difference"]) == pytest.approx(0.06)


def test_models_are_compared_only_on_pairs_held_out_for_both(fiq_dataset):
    a = ModelEntry.objects.create(name="a", family="demo")
    b = ModelEntry.objects.create(name="b", family="demo")
    benchmark = _benchmark(fiq_dataset, makers={n: a.pk for n in range(100)})  # a made set 1 of pairs 0-99
    own = np.arange(N_PAIRS) < 100
    _score(a, benchmark, own | (np.arange(N_PAIRS) >= 250))  # right on its own pairs, and on 250-399
    _score(b, benchmark, np.arange(N_PAIRS) >= 250)  # wrong on a's pairs, the same as a elsewhere
    rows = {r["model"]: r for r in APIClient().get("/api/leaderboard/benchmarks/paired").json()["rows"]}
    # on the 300 pairs neither made the two answer alike: no difference, one rank
    assert rows["b"]["above_pairs"] == 300 and rows["b"]["above_difference"] == 0.0
    assert rows["a"]["rank"] == rows["b"]["rank"] == 1


def test_a_weighted_benchmark_ranks_by_the_weighted_difference(fiq_dataset):
    weights = np.where(np.arange(N_PAIRS) < 200, 3.0, 1.0)
    benchmark = _benchmark(fiq_dataset, weights=weights)
    a = ModelEntry.objects.create(name="a", family="demo")
    b = ModelEntry.objects.create(name="b", family="demo")
    right_a, right_b = np.arange(N_PAIRS) < 280, np.arange(N_PAIRS) < 256
    _score(a, benchmark, right_a)
    _score(b, benchmark, right_b)
    board = APIClient().get("/api/leaderboard/benchmarks/paired").json()
    rows = {r["model"]: r for r in board["rows"]}
    # by definition: the weighted mean of the per-pair differences (only pairs 256-279 differ, weight 1 each)
    x = right_a.astype(float) - right_b
    d = np.sum(weights * x) / np.sum(weights)
    se = np.sqrt(N_PAIRS / (N_PAIRS - 1) * np.sum(weights**2 * (x - d) ** 2)) / np.sum(weights)
    assert rows["b"]["above_difference"] == pytest.approx(d, abs=1e-6)
    assert rows["b"]["above_difference_low"] == pytest.approx(d - 1.959964 * se, abs=1e-5)
    assert board["ranking"]["test"] == "Wald test of the weighted paired difference"
    assert rows["a"]["rank"] == 1 and rows["b"]["rank"] == 2


def test_the_recall_column_comes_from_one_named_split(fiq_dataset):
    benchmark = _benchmark(fiq_dataset)
    model = ModelEntry.objects.create(name="m", family="demo")
    _score(model, benchmark, np.ones(N_PAIRS, dtype=bool))
    from django.utils import timezone

    now = timezone.now()
    RetrievalRun.objects.create(model=model, dataset=fiq_dataset, split="val", status="finished",
                                finished_at=now - timezone.timedelta(days=1),
                                metrics={"mean": {"R@10": 20.0, "R@50": 40.0}})
    RetrievalRun.objects.create(model=model, dataset=fiq_dataset, split="test", status="finished", finished_at=now,
                                metrics={"mean": {"R@10": 90.0, "R@50": 95.0}})  # newer, but another split
    board = APIClient().get("/api/leaderboard/benchmarks/paired").json()
    assert board["recall_split"] == "val" and board["recall_label"].endswith("(val)")
    assert board["rows"][0]["recall"] == 30.0


def test_the_page_explains_the_ranks_under_the_chart_and_shows_the_gap(fiq_dataset, client):
    benchmark = _benchmark(fiq_dataset)
    _score(ModelEntry.objects.create(name="a", family="demo"), benchmark, np.arange(N_PAIRS) < 280)
    _score(ModelEntry.objects.create(name="b", family="demo"), benchmark, np.arange(N_PAIRS) < 256)
    html = client.get("/leaderboard/paired/").content.decode()
    chart, how, table = html.index("<svg"), html.index("How to read this</h3>"), html.index('id="table-h"')
    assert chart < how < table
    assert "Gap to the row above" in html and "+0.060" in html and "vs a, p<sub>Holm</sub> &lt; 0.001" in html
    assert "cannot tell them apart" not in html and "Overlapping intervals do not mean" in html
    assert "exact McNemar test" in html and "Holm" in html


def test_the_page_opens_with_the_chart_and_the_table_and_folds_the_explanation_below(fiq_dataset, client):
    benchmark = _benchmark(fiq_dataset)
    _score(ModelEntry.objects.create(name="a", family="demo"), benchmark, np.arange(N_PAIRS) < 280)
    html = client.get("/leaderboard/paired/").content.decode()
    main = html[html.index("<main"):]
    chart, table = main.index("<svg"), main.index("</table>")
    # Before the table: the header, the headline chart and the short reading guide only (no long explanation).
    before = re.sub(r"<svg.*?</svg>|<[^>]+>", " ", main[:table], flags=re.S)
    words_before_chart = len(re.sub(r"<[^>]+>", " ", main[:chart]).split())
    assert words_before_chart < 80, words_before_chart
    assert "The question people answered" not in before and "About this demo" not in before
    fold = main.index('<details class="lb-fold" id="how-to-read-fold">')
    assert table < fold < main.index('id="how-to-read"')  # the full explanation sits folded below the table
    assert '<details class="lb-fold" id="how-to-read-fold" open' not in main
