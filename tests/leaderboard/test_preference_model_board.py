"""The leaderboard's preference-model section and its agreement-estimator setting (page and JSON)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from rest_framework.test import APIClient

from hpbench.catalog.models import Dataset, Image, ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceModel
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.preference_models import benchmark_estimator_set

HUMAN = [1, 2, 1, 1, 2, 1, 0, 2, 1, 2]
CHOICES = {"pub-a": [1, 2, 2, 1, 2, 1, 1, 1, 1, 2], "secret-b": [2, 2, 1, 1, 1, 1, 2, 2, 1, 1]}
P = [0.8, 0.3, 0.6, 0.7, 0.2, 0.9, 0.5, 0.4, 0.65, 0.35]
CAND_P = [0.9, 0.1, 0.55, 0.7]
CAND_CHOICES = {"pub-a": [1, 1, 2, 0], "secret-b": [2, 2, 1, 1]}


def _figure(value):
    return {"value": value, "lower": value - 0.1, "upper": value + 0.1}


@pytest.fixture
def board(db):
    dataset = Dataset.objects.create(name="pmb", kind=Dataset.Kind.FASHIONIQ, image_root="/nonexistent")
    image = Image.objects.create(dataset=dataset, name="a", category="shirt", split="val", file_path="a.png").pk
    benchmark = benchmark_store(name="pmb", source="campaign", dataset=dataset, pairs=[
        PairSpec(reference_id=image, text=f"t{i}", set1=(image,), set2=(image,), preference=h)
        for i, h in enumerate(HUMAN)]).benchmark
    entries = {}
    for name, choices in CHOICES.items():
        entries[name] = ModelEntry.objects.create(name=name, family="demo", is_public=name.startswith("pub"))
        ModelScore.objects.create(model=entries[name], benchmark=benchmark, status=ModelScore.Status.FINISHED,
                                  agreement=0.5, agreement_low=0.4, agreement_high=0.6, n_pairs=9,
                                  pair_choices=np.asarray(choices, dtype=np.int8).tobytes())
    PreferenceModel.objects.create(
        benchmark=benchmark, version=1, method="logreg-v1", status=PreferenceModel.Status.FINISHED,
        predictions=np.asarray(P, dtype=np.float64).tobytes(), feature_models=[e.pk for e in entries.values()],
        candidates={"p": CAND_P, "choices": {str(entries[n].pk): c for n, c in CAND_CHOICES.items()}},
        report={"preference_model": {"agreement": _figure(0.81), "log_loss": _figure(0.45)},
                "models": {"pub-a": {"agreement": _figure(0.7), "log_loss": _figure(0.6)},
                           "secret-b": {"agreement": _figure(0.75), "log_loss": _figure(0.55)}},
                "best_model": "secret-b", "margin_over_best": _figure(0.06), "n_pairs": 9},
    )
    return benchmark, entries


def _ppi_by_hand(name):
    """PPI++ from its formula: Y = credit on decided pairs, f = expected credit, λ tuned and clipped."""
    idx = [i for i, h in enumerate(HUMAN) if h != 0]
    c = CHOICES[name]

    def f(p, choice):
        return p if choice == 1 else (1 - p if choice == 2 else 0.5)

    y = [1.0 if c[i] == HUMAN[i] else 0.0 for i in idx]
    f_lab = [f(P[i], c[i]) for i in idx]
    f_all = f_lab + [f(p, ch) for p, ch in zip(CAND_P, CAND_CHOICES[name], strict=True)]
    n, big_n = len(y), len(f_all)
    my, mf = sum(y) / n, sum(f_lab) / n
    cov = sum((a - my) * (b - mf) for a, b in zip(y, f_lab, strict=True)) / n
    var_f = sum((b - mf) ** 2 for b in f_lab) / n
    lam = min(1.0, max(0.0, cov / ((1 + n / big_n) * var_f)))
    rect = [a - lam * b for a, b in zip(y, f_lab, strict=True)]
    mean_all = sum(f_all) / big_n
    value = lam * mean_all + sum(rect) / n
    se = math.sqrt(lam**2 * sum((v - mean_all) ** 2 for v in f_all) / big_n / big_n + statistics.variance(rect) / n)
    return value, se


def test_the_page_shows_the_preference_model_as_its_own_kind_of_row_without_private_models(board, client):
    benchmark, _ = board
    html = client.get(f"/leaderboard/{benchmark.name}/").content.decode()
    assert "Agreement estimator: <strong>Classic" in html
    assert "preference model, not a retrieval model" in html
    assert "0.810" in html and "pub-a" in html
    assert "secret-b" not in html  # a private model's name never reaches an outsider, nor the margin over it
    assert "Margin over the best" not in html


def test_with_the_best_model_public_the_page_gives_both_paired_margins(board, client):
    benchmark, entries = board
    ModelEntry.objects.filter(pk=entries["secret-b"].pk).update(is_public=True)
    PreferenceModel.objects.filter(benchmark=benchmark).update(report={
        **PreferenceModel.objects.get(benchmark=benchmark).report,
        "log_loss_gain_over_best": _figure(0.07), "inputs": "set-score gaps (from their top-K) and which set shows "
                                                             "the reference"})
    html = client.get(f"/leaderboard/{benchmark.name}/").content.decode()
    assert "Margin over the best model's own score (secret-b): 0.060" in html
    assert "log-loss lower by 0.070 [-0.030, 0.170]" in html
    assert "scored models' set-score gaps (from their top-K)" in html


def test_the_ppi_setting_replaces_agreement_by_the_prediction_powered_estimate(board):
    benchmark, entries = board
    benchmark_estimator_set(benchmark=benchmark, estimator="ppi")
    body = APIClient().get(f"/api/leaderboard/benchmarks/{benchmark.name}").json()
    assert body["agreement_estimator"] == "ppi"
    [row] = body["rows"]
    value, se = _ppi_by_hand("pub-a")
    assert row["agreement_estimator"] == "ppi"
    assert row["agreement"] == pytest.approx(value)
    assert row["agreement_high"] - row["agreement"] == pytest.approx(1.959963984540054 * se)
    assert row["agreement_classic"] == 0.5
    assert set(body["preference_model"]["ppi"]) == {str(entries["pub-a"].pk)}
    import csv
    import io

    [csv_row] = csv.DictReader(io.StringIO(APIClient().get(f"/api/leaderboard/benchmarks/{benchmark.name}/csv")
                                           .content.decode()))
    assert csv_row["agreement_estimator"] == "ppi" and float(csv_row["agreement"]) == pytest.approx(value)
    assert float(csv_row["agreement_classic"]) == 0.5
    from django.test import Client

    html = Client().get(f"/leaderboard/{benchmark.name}/").content.decode()
    # 9 decided labelled pairs + 4 candidates; the classic figure in the badge's title.
    assert "All pairs (prediction-powered)" in html and "n=9 + 4 predicted" in html
    assert f"{value:.3f}" in html and "classic 0.500 [0.400, 0.600]" in html


def test_without_candidates_the_page_says_the_classic_estimate_is_shown(board, client):
    benchmark, _ = board
    benchmark_estimator_set(benchmark=benchmark, estimator="ppi")
    PreferenceModel.objects.update(candidates={})
    html = client.get(f"/leaderboard/{benchmark.name}/").content.decode()
    assert "Prediction-powered" in html and "needs unlabelled candidate pairs" in html
    body = APIClient().get(f"/api/leaderboard/benchmarks/{benchmark.name}").json()
    assert body["rows"][0]["agreement"] == 0.5 and body["rows"][0]["agreement_estimator"] == "classic"


def test_the_ppi_export_carries_what_recomputes_the_leaderboards_estimate(board, tmp_path, staff_user):
    """``export_preferences --format ppi``: from the file alone, the formula (here by hand) gives the leaderboard's
    prediction-powered agreement; a benchmark without a preference model, or a non-benchmark export, is refused
    by name, and only staff may queue the job."""
    import json
    from io import StringIO

    from django.contrib.auth.models import User
    from django.core.management import CommandError, call_command

    from hpbench.exports.selectors.params import ExportError, params_parse
    from hpbench.exports.services import export_job_create

    benchmark, entries = board
    benchmark_estimator_set(benchmark=benchmark, estimator="ppi")
    out = tmp_path / "ppi.json"
    summary = StringIO()
    call_command("export_preferences", "--format", "ppi", "--benchmark", benchmark.name, "--out", str(out),
                 "--json", "--no-progress", stdout=summary)
    assert json.loads(summary.getvalue())["rows"] == len(HUMAN) + len(CAND_P)
    doc = json.loads(out.read_text())
    assert doc["labelled"]["preference"] == HUMAN and doc["labelled"]["p_set1"] == pytest.approx(P)
    assert doc["candidates"]["p_set1"] == pytest.approx(CAND_P)
    assert doc["models"]["pub-a"]["choices"] == CHOICES["pub-a"]
    assert doc["models"]["pub-a"]["candidate_choices"] == CAND_CHOICES["pub-a"]
    assert "annotator" not in out.read_text() and doc["agreement_estimator"] == "ppi"

    def recompute(name):  # from the document only, the formula written out again
        m, lab = doc["models"][name], doc["labelled"]
        idx = [i for i, h in enumerate(lab["preference"]) if h != 0]

        def f(p, choice):
            return p if choice == 1 else (1 - p if choice == 2 else 0.5)

        y = [0.5 if m["choices"][i] == 0 else float(m["choices"][i] == lab["preference"][i]) for i in idx]
        f_lab = [f(lab["p_set1"][i], m["labelled_choices"][i]) for i in idx]
        f_all = f_lab + [f(p, c) for p, c in zip(doc["candidates"]["p_set1"], m["candidate_choices"], strict=True)]
        n, big_n = len(y), len(f_all)
        my, mf = sum(y) / n, sum(f_lab) / n
        cov = sum((a - my) * (b - mf) for a, b in zip(y, f_lab, strict=True)) / n
        var_f = sum((b - mf) ** 2 for b in f_lab) / n
        lam = min(1.0, max(0.0, cov / ((1 + n / big_n) * var_f)))
        return lam * sum(f_all) / big_n + sum(a - lam * b for a, b in zip(y, f_lab, strict=True)) / n

    body = APIClient().get(f"/api/leaderboard/benchmarks/{benchmark.name}").json()
    assert body["rows"][0]["agreement"] == pytest.approx(recompute("pub-a"))
    assert recompute("pub-a") == pytest.approx(_ppi_by_hand("pub-a")[0])

    params = params_parse(benchmark=benchmark.name)
    assert export_job_create(requested_by=staff_user, fmt="ppi", params=params).format == "ppi"
    outsider = User.objects.create_user("not-staff", password="x")
    with pytest.raises(PermissionError):
        export_job_create(requested_by=outsider, fmt="ppi", params=params)
    with pytest.raises(ExportError, match="name a benchmark"):
        export_job_create(requested_by=staff_user, fmt="ppi", params=params_parse())
    PreferenceModel.objects.update(status=PreferenceModel.Status.FAILED)
    with pytest.raises(CommandError, match="has no trained preference model"):
        call_command("export_preferences", "--format", "ppi", "--benchmark", benchmark.name, "--out", str(out),
                     "--no-progress")
