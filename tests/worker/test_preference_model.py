"""A benchmark's preference model, trained by a real worker with cross-fitting, and its held-out figures."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hpbench.catalog.models import Dataset, Image, ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceModel
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.preference_models import benchmark_estimator_set, preference_model_request


def _benchmark_with_scores(n_pairs: int = 240, seed: int = 0):
    """Pairs over 3 set makers and 4 scoring models whose choices follow a latent gap with growing noise."""
    rng = np.random.default_rng(seed)
    dataset = Dataset.objects.create(name="pm-demo", kind=Dataset.Kind.FASHIONIQ, image_root="/nonexistent")
    images = [Image.objects.create(dataset=dataset, name=f"im{n}", category="shirt", split="val",
                                   file_path=f"im{n}.png").pk for n in range(8)]
    makers = [ModelEntry.objects.create(name=f"maker-{k}", family="demo").pk for k in range(3)]
    gap = rng.normal(0, 1, n_pairs)
    human = np.where(rng.random(n_pairs) < 1 / (1 + np.exp(-2.5 * gap)), 1, 2)
    human[:6] = 0  # a few human ties
    pairs = []
    for i in range(n_pairs):
        a, b = rng.choice(3, 2, replace=False)
        pairs.append(PairSpec(reference_id=images[i % 8], text=f"request {i}", set1=(images[1], images[2]),
                              set2=(images[3], images[4]), preference=int(human[i]),
                              set1_model_id=makers[a], set2_model_id=makers[b]))
    benchmark = benchmark_store(name="pm-demo", source="campaign", dataset=dataset, pairs=pairs).benchmark
    for k, noise in enumerate((0.7, 1.0, 1.5, 3.0)):
        entry = ModelEntry.objects.create(name=f"scorer-{k}", family="demo")
        choices = np.where(gap + rng.normal(0, noise, n_pairs) > 0, 1, 2).astype(np.int8)
        ModelScore.objects.create(model=entry, benchmark=benchmark, status=ModelScore.Status.FINISHED,
                                  pair_choices=choices.tobytes())
    return benchmark, human


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_a_cross_fitted_preference_model(celery_worker_process):
    benchmark, human = _benchmark_with_scores()
    row = preference_model_request(benchmark=benchmark, folds=5)
    assert preference_model_request(benchmark=benchmark) == row  # queued once
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if row.status in ("finished", "failed"):
            break
        time.sleep(0.3)
    assert row.status == "finished", row.error
    assert row.version == 1 and row.method == "logreg-v1" and len(row.feature_models) == 4
    p = row.probabilities()
    assert p.shape == (240,) and ((p > 0) & (p < 1)).all()
    decided = human != 0
    pm = row.report["preference_model"]
    # The stored held-out agreement is that of the stored out-of-fold predictions.
    credit = np.where(p[decided] > 0.5, human[decided] == 1, human[decided] == 2).astype(float)
    assert pm["agreement"]["value"] == pytest.approx(credit.mean())
    assert set(row.report["models"]) == {"scorer-0", "scorer-1", "scorer-2", "scorer-3"}
    assert row.report["n_pairs"] == int(decided.sum())
    assert pm["log_loss"]["lower"] <= pm["log_loss"]["value"] <= pm["log_loss"]["upper"]

    # Idempotent: the task again leaves the finished row alone; a new request is the next version.
    from hpbench.celery import app

    assert app.send_task("gpu.preference.train", args=[row.pk]).get(timeout=30) == "finished"
    assert PreferenceModel.objects.get(pk=row.pk).finished_at == row.finished_at
    assert preference_model_request(benchmark=benchmark).version == 2


@pytest.mark.django_db
def test_it_fails_naming_what_is_missing_and_the_setting_is_checked():
    from worker.preference import preference_model_execute

    dataset = Dataset.objects.create(name="pm-empty", kind=Dataset.Kind.FASHIONIQ, image_root="/nonexistent")
    image = Image.objects.create(dataset=dataset, name="a", category="shirt", split="val", file_path="a.png").pk
    benchmark = benchmark_store(name="pm-empty", source="campaign", dataset=dataset, pairs=[
        PairSpec(reference_id=image, text="t", set1=(image,), set2=(image,), preference=1)]).benchmark
    row = PreferenceModel.objects.create(benchmark=benchmark, version=1, method="logreg-v1")
    assert preference_model_execute(model_id=row.pk) == "failed"
    row.refresh_from_db()
    assert "no finished model score" in row.error
    with pytest.raises(ValueError, match="estimator must be one of"):
        benchmark_estimator_set(benchmark=benchmark, estimator="magic")
    benchmark_estimator_set(benchmark=benchmark, estimator="ppi")
    benchmark.refresh_from_db()
    assert benchmark.agreement_estimator == "ppi"


@pytest.mark.django_db
def test_candidates_are_the_campaigns_uncompared_pairs_scored_like_the_labelled_ones(monkeypatch):
    """Three makers, two queries: of the 6 (query, maker pair) candidates, the one the campaign compared is labelled;
    the rest are candidates whose choices come from each scorer's top-K (an image outside it at its K-th score)."""
    from annotate.models import Comparison
    from annotate.services import campaign_build
    from annotate.services.campaigns import campaign_create
    from hpbench.catalog.models import Query
    from worker.preference import candidate_inputs

    dataset = Dataset.objects.create(name="pm-cand", kind=Dataset.Kind.FASHIONIQ, image_root="/nonexistent")
    im = [Image.objects.create(dataset=dataset, name=f"i{n}", category="dress", split="val",
                               file_path=f"i{n}.png").pk for n in range(6)]
    q1, q2 = (Query.objects.create(dataset=dataset, key=f"q{n}", split="val", reference_id=im[0]).pk for n in (1, 2))
    makers = [ModelEntry.objects.create(name=f"mk{n}", family="demo") for n in range(3)]
    a, b, c = (m.pk for m in makers)
    campaign = campaign_create(slug="pm-cand", name="c", dataset=dataset, models=makers, set_size=1)
    Comparison.objects.create(campaign=campaign, query_id=q1, reference_image_id=im[0], text="t", position=2,
                              set_a_images=[im[1]], set_b_images=[im[3]], is_gold=True, open_slots=0)  # no makers
    Comparison.objects.create(campaign=campaign, query_id=q1, reference_image_id=im[0], text="t", position=1,
                              set_a_images=[im[1]], set_b_images=[im[2]], set_a_model_id=b, set_b_model_id=a,
                              open_slots=0)
    benchmark = benchmark_store(name="pm-cand", source="campaign", dataset=dataset, campaign=campaign, pairs=[
        PairSpec(reference_id=im[0], text="t", set1=(im[1],), set2=(im[2],), preference=1, query_id=q1,
                 set1_model_id=a, set2_model_id=b)]).benchmark
    # top-K (K = 2) per model and query: (image ids, scores). Maker a's top set on q1 is im1, b's im2, c's im3.
    topks = {
        a: {q1: ([im[1], im[4]], [0.9, 0.5]), q2: ([im[1], im[2]], [0.8, 0.7])},
        b: {q1: ([im[2], im[1]], [0.9, 0.6]), q2: ([im[3], im[1]], [0.9, 0.1])},
        c: {q1: ([im[3], im[2]], [0.7, 0.6]), q2: ([im[1], im[5]], [0.6, 0.2])},
    }
    monkeypatch.setattr(campaign_build, "_latest_runs", lambda campaign, entries: {e.pk: e for e in entries})
    monkeypatch.setattr(campaign_build, "_full_topks", lambda runs: {pk: topks[pk] for pk in runs})
    scores = [ModelScore(model_id=pk) for pk in (a, b)]  # the scorers: a and b
    betas = [np.array([1.0, 0.5, 0.0, 0.0, 0.0]), np.array([2.0, 0.0, 0.0, 0.0, 0.0])]
    out = candidate_inputs(benchmark=benchmark, scores=scores, makers=[a, b, c], betas=betas, decided_folds={0: 1})
    # Candidates in (query, maker i < maker j) order, (q1, a, b) compared: (q1,a,c) (q1,b,c) (q2,a,b) (q2,a,c)
    # (q2,b,c); on q2 a's and c's top sets are both im1: skipped.
    # Scorer a on (q1,a,c): im1 0.9 vs im3 (outside its top-K: 0.5) -> 1; (q1,b,c): im2 0.5 vs im3 0.5 -> 0;
    # (q2,a,b): im1 0.8 vs im3 0.7 -> 1; (q2,b,c): im3 0.7 vs im1 0.8 -> 2.
    # Scorer b on the same: im1 0.6 vs im3 0.6 -> 0; im2 0.9 vs im3 0.6 -> 1; im1 0.1 vs im3 0.9 -> 2; im3 0.9 vs
    # im1 0.1 -> 1.
    assert out["choices"] == {str(a): [1, 0, 1, 2], str(b): [0, 1, 2, 1]}
    x = np.array([[1, 0, 1, 0, -1], [0, 1, 0, 1, -1], [1, -1, 1, -1, 0], [-1, 1, 0, 1, -1]], dtype=float)
    expected = np.mean([1 / (1 + np.exp(-(x @ beta))) for beta in betas], axis=0)
    assert out["p"] == pytest.approx(expected.tolist())
    # The labelled pair (q1: im1 vs im2, a vs b) from top-K too: a 0.9 vs 0.5 -> 1, b 0.6 vs 0.9 -> 2; fold 1's fit.
    assert out["labelled_choices"] == {str(a): [1], str(b): [2]}
    assert out["labelled_p"] == pytest.approx([1 / (1 + np.exp(-2.0))])
