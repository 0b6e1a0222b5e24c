"""``make up``'s terminal: status lines name their metric and round it; library noise goes to var/logs/up.log."""

from __future__ import annotations

import logging
import warnings

import pytest

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from hpbench.leaderboard.services.benchmarks import BenchmarkResult
from hpbench.ops.demo_setup import benchmark_line, campaign_line, run_line, score_line
from hpbench.ops.management.commands.up import LIBRARY_LOGGERS, route_library_logs


def _run(**fields) -> RetrievalRun:
    model = ModelEntry(name="demo-qure")
    dataset = Dataset(name="demo", kind=fields.pop("kind", Dataset.Kind.DEMO))
    return RetrievalRun(pk=3, model=model, dataset=dataset, **fields)


def test_a_finished_run_names_its_recall_and_rounds_it():
    run = _run(status="finished", metrics={"avg": 75.23456, "mean": {"R@10": 70.1, "R@50": 80.4}})
    assert run_line(run) == "retrieval run 3, demo-qure: finished, R@10/50 avg 75.2"
    cirr = _run(status="finished", metrics={"avg": 61.04}, kind=Dataset.Kind.CIRR)
    assert run_line(cirr) == "retrieval run 3, demo-qure: finished, (R@5+Rsubset@1)/2 61.0"
    failed = _run(status="failed", error="RuntimeError: CUDA out of memory\nTraceback ...")
    assert run_line(failed) == "retrieval run 3, demo-qure: failed (RuntimeError: CUDA out of memory)"


def test_a_score_names_agreement_and_preference_ratio_rounded():
    benchmark = PreferenceBenchmark(name="demo-human-preferences", version=1)
    score = ModelScore(
        model=ModelEntry(name="demo-qure"),
        benchmark=benchmark,
        status="finished",
        agreement=0.8692307,
        agreement_low=0.80123,
        agreement_high=0.9312,
        preference_ratio=0.871234,
    )
    assert score_line(score) == (
        "score demo-qure on demo-human-preferences v1: agreement 0.869 [0.80, 0.93], preference ratio 0.871"
    )
    score.heldout_agreement, score.heldout_agreement_low, score.heldout_agreement_high = 0.8123, 0.7512, 0.8634
    score.heldout_n_pairs = 180
    assert score_line(score) == (
        "score demo-qure on demo-human-preferences v1: held-out agreement 0.812 [0.75, 0.86] n=180, "
        "all pairs agreement 0.869 [0.80, 0.93], preference ratio 0.871"
    )


def test_a_frozen_benchmark_is_a_sentence_not_an_object_dump():
    benchmark = PreferenceBenchmark(name="demo-human-preferences", version=1, n_pairs=26)
    result = BenchmarkResult(
        benchmark=benchmark,
        created=True,
        report={"comparisons": 26, "pairs": 26, "dropped": {"no_votes": 0, "both_irrelevant": 1, "tie": 2}},
    )
    line = benchmark_line(result)
    assert line == (
        "benchmark demo-human-preferences v1 frozen: 26 pairs from 26 comparisons "
        "(dropped: 0 no votes, 1 both irrelevant, 2 tie)"
    )
    assert "BenchmarkResult" not in line and "<" not in line


@pytest.mark.django_db
def test_the_campaign_line_names_agreement_and_alpha(tmp_path):
    from tests.frontend.monitor_fixtures import voted_campaign

    voted = voted_campaign(tmp_path)
    assert campaign_line(voted.built.campaign) == (
        "campaign monitored: 14 votes, agreement 0.444, Krippendorff's alpha 0.130"
    )


def test_library_log_lines_and_warnings_go_to_the_log_file(tmp_path, capsys):
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate) for name in LIBRARY_LOGGERS}
    try:
        route_library_logs(tmp_path / "logs" / "up.log")
        logging.getLogger("kombu.connection").warning("No hostname was supplied. Reverting to default 'localhost'")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a deprecated celery setting", DeprecationWarning, stacklevel=1)
        for handler in logging.getLogger("kombu").handlers:
            handler.flush()
    finally:
        logging.captureWarnings(False)
        for name, (handlers, propagate) in saved.items():
            logging.getLogger(name).handlers = handlers
            logging.getLogger(name).propagate = propagate
    out, err = capsys.readouterr()
    assert "No hostname" not in out + err and "deprecated celery" not in out + err
    text = (tmp_path / "logs" / "up.log").read_text()
    assert "No hostname was supplied" in text and "a deprecated celery setting" in text


def test_a_preference_model_line_names_its_held_out_agreement_and_the_best_model():
    from hpbench.leaderboard.models import PreferenceModel
    from hpbench.ops.demo_setup import preference_model_line

    benchmark = PreferenceBenchmark(name="demo-human-preferences", version=1)
    row = PreferenceModel(benchmark=benchmark, version=2, status="finished", report={
        "preference_model": {"agreement": {"value": 0.81234, "lower": 0.7512, "upper": 0.8699}},
        "best_model": "demo-qure", "models": {"demo-qure": {"agreement": {"value": 0.8049}}}})
    assert preference_model_line(row) == ("preference model v2 on demo-human-preferences: held-out agreement 0.812 "
                                          "[0.75, 0.87] (best model demo-qure: 0.805)")
    row.report |= {"margin_over_best": {"value": 0.00744, "lower": -0.041, "upper": 0.0551},
                   "log_loss_gain_over_best": {"value": 0.0652, "lower": 0.0123, "upper": 0.118}}
    assert preference_model_line(row) == (
        "preference model v2 on demo-human-preferences: held-out agreement 0.812 [0.75, 0.87] (best model demo-qure: "
        "0.805; margin 0.007 [-0.04, 0.06]; log-loss lower by 0.065 [0.01, 0.12])")
    failed = PreferenceModel(benchmark=benchmark, version=1, status="failed", error="ValueError: no scores\n...")
    assert preference_model_line(failed) == (
        "preference model v1 on demo-human-preferences: failed (ValueError: no scores)")
