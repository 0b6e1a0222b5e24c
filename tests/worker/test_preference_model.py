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
    assert row.version == 1 and row.method == "logreg-v2" and len(row.feature_models) == 4
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
    the rest are candidates whose gaps and choices come from each scorer's top-K (an image outside it at its K-th
    score); then the worker trains on those inputs and predicts every candidate."""
    from annotate.models import Comparison
    from annotate.services import campaign_build
    from annotate.services.campaigns import campaign_create
    from hpbench.catalog.models import Query
    from worker.preference import topk_inputs

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
    out = topk_inputs(benchmark=benchmark, scores=scores, makers=[a, b, c])
    # Candidates in (query, maker i < maker j) order, (q1, a, b) compared: (q1,a,c) (q1,b,c) (q2,a,b) (q2,a,c)
    # (q2,b,c); on q2 a's and c's top sets are both im1: skipped.
    # Scorer a on (q1,a,c): im1 0.9 - im3 (outside its top-K: 0.5) = 0.4; (q1,b,c): im2 0.5 - im3 0.5 = 0;
    # (q2,a,b): im1 0.8 - im3 0.7 = 0.1; (q2,b,c): im3 0.7 - im1 0.8 = -0.1.
    # Scorer b on the same: im1 0.6 - im3 0.6 = 0; im2 0.9 - im3 0.6 = 0.3; im1 0.1 - im3 0.9 = -0.8; im3 0.9 -
    # im1 0.1 = 0.8.
    assert out["candidate_gaps"] == pytest.approx(np.array([[0.4, 0.0, 0.1, -0.1], [0.0, 0.3, -0.8, 0.8]]))
    assert out["candidate_choices"].tolist() == [[1, 0, 1, 2], [0, 1, 2, 1]]
    assert out["candidate_m1"].tolist() == [0, 1, 0, 1] and out["candidate_m2"].tolist() == [2, 2, 1, 2]
    # The labelled pair (q1: im1 vs im2) from top-K too: a 0.9 - 0.5, b 0.6 - 0.9.
    assert out["labelled_gaps"] == pytest.approx(np.array([[0.4], [-0.3]]))
    assert out["labelled_choices"].tolist() == [[1], [2]]
    assert out["candidate_keys"] == [[q1, a, c], [q1, b, c], [q2, a, b], [q2, b, c]]
    assert out["candidate_reference"].tolist() == [0, 0, 0, 0]  # no set shows the reference (im0)

    # A query one run does not cover has no candidates; a labelled pair's query not covered skips the inputs
    # (the worker then learns from the exact choices and says why).
    del topks[b][q2]
    assert topk_inputs(benchmark=benchmark, scores=scores, makers=[a, b, c])["candidate_gaps"].shape == (2, 2)
    del topks[a][q1]
    assert topk_inputs(benchmark=benchmark, scores=scores, makers=[a, b, c]) == {
        "skipped": f"a labelled pair's query {q1} is not covered by every model's run"}


@pytest.mark.django_db
def test_with_top_k_inputs_the_worker_learns_from_score_gaps_and_predicts_every_candidate(monkeypatch):
    """A campaign over 3 makers and 40 queries, 60 labelled pairs whose human verdict follows scorer 0's gap: the
    worker trains on the top-K gaps, stores out-of-fold predictions that follow the gap, and predicts the 60
    uncompared (query, maker pair) candidates with the same fold fits."""
    from annotate.services import campaign_build
    from annotate.services.campaigns import campaign_create
    from hpbench.catalog.models import Query
    from worker.preference import preference_model_execute

    rng = np.random.default_rng(3)
    dataset = Dataset.objects.create(name="pm-gaps", kind=Dataset.Kind.FASHIONIQ, image_root="/nonexistent")
    im = [Image.objects.create(dataset=dataset, name=f"g{n}", category="dress", split="val",
                               file_path=f"g{n}.png").pk for n in range(3)]
    queries = [Query.objects.create(dataset=dataset, key=f"gq{n}", split="val", reference_id=im[0]).pk
               for n in range(40)]
    makers = [ModelEntry.objects.create(name=f"gm{n}", family="demo") for n in range(3)]
    mk = [m.pk for m in makers]
    campaign = campaign_create(slug="pm-gaps", name="c", dataset=dataset, models=makers, set_size=1)
    # Maker n's top set on every query is image n (its list starts there); scorer 0 (maker 0) scores image n at
    # u[q, n], scorer 1 (maker 1) is noise.
    u = rng.normal(0, 1, (40, 3))
    order = ((0, 1, 2), (1, 0, 2), (2, 0, 1))
    noise = rng.normal(0, 1, (40, 3))
    topks = {mk[m]: {q: ([im[i] for i in order[m]], [(u if m == 0 else noise)[n, i] for i in order[m]])
                     for n, q in enumerate(queries)} for m in range(3)}
    specs = []
    for n, q in enumerate(queries[:30]):
        for i, j in ((0, 1), (1, 2)):
            campaign.comparisons.create(query_id=q, reference_image_id=im[0], text="t", position=len(specs),
                                        set_a_images=[im[i]], set_b_images=[im[j]], set_a_model_id=mk[i],
                                        set_b_model_id=mk[j], open_slots=0)
            specs.append(PairSpec(reference_id=im[0], text="t", set1=(im[i],), set2=(im[j],), query_id=q,
                                  preference=1 if u[n, i] + rng.normal(0, 0.3) > u[n, j] else 2,
                                  set1_model_id=mk[i], set2_model_id=mk[j]))
    benchmark = benchmark_store(name="pm-gaps", source="campaign", dataset=dataset, campaign=campaign,
                                pairs=specs).benchmark
    for pk in mk[:2]:  # scorers: makers 0 and 1
        human = np.array([s.preference for s in specs])
        ModelScore.objects.create(model_id=pk, benchmark=benchmark, status=ModelScore.Status.FINISHED,
                                  pair_choices=np.where(rng.random(human.size) < 0.5, 1, 2).astype(np.int8).tobytes())
    monkeypatch.setattr(campaign_build, "_latest_runs", lambda campaign, entries: {e.pk: e for e in entries})
    monkeypatch.setattr(campaign_build, "_full_topks", lambda runs: {pk: topks[pk] for pk in runs})
    row = PreferenceModel.objects.create(benchmark=benchmark, version=1, method="logreg-v2", folds=5)
    assert preference_model_execute(model_id=row.pk) == "finished"
    row.refresh_from_db()
    assert row.report["inputs"] == "set-score gaps (from their top-K) and which set shows the reference"
    assert len(row.report["l2"]) == 5
    p, human = row.probabilities(), np.array([s.preference for s in specs])
    gap0 = np.array([u[n, i] - u[n, j] for n in range(30) for i, j in ((0, 1), (1, 2))])
    assert np.corrcoef(p, gap0)[0, 1] > 0.8  # learned from the informative scorer's gap, out of fold
    assert row.candidates["labelled_p"] == pytest.approx(p.tolist())
    # Candidates: 10 uncovered-by-the-campaign queries x 3 maker pairs + 30 labelled queries x the (0, 2) pair.
    assert len(row.candidates["p"]) == 60 and set(row.candidates["choices"]) == {str(mk[0]), str(mk[1])}
    keys = {tuple(k) for k in row.candidates["keys"]}
    assert len(keys) == 60 and (queries[0], mk[0], mk[2]) in keys and (queries[0], mk[0], mk[1]) not in keys
    assert row.report["preference_model"]["agreement"]["value"] > 0.75
