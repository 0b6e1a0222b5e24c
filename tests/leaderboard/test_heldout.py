"""Held-out agreement, the leave-one-out ceiling and the preference ratio's chance level: kept at freeze, computed
with each score, shown on the leaderboard page, its JSON and CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from hpbench.catalog.models import ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_freeze, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store
from tests.leaderboard.conftest import make_images

pytestmark = pytest.mark.django_db

# (maker of set 1, maker of set 2, votes, category): makers by index into MODELS; None = no maker.
PAIRS = [
    (0, 1, [1, 1, 2], "dress"), (0, 1, [2, 2, 2], "dress"), (1, 2, [1, 1, 1], "shirt"), (1, 2, [1, 2, 2], "shirt"),
    (2, 0, [2, 2, 1], "dress"), (2, 1, [1, 1, 2], "shirt"), (1, 2, [2, 1], "shirt"), (None, None, [1, 1, 0], "dress"),
]
MODELS = ["alpha", "beta", "gamma"]
# Each model's set scores per pair: it scores its own set highest, as a maker does.
SCORES = {
    "alpha": [(0.9, 0.1), (0.8, 0.2), (0.3, 0.6), (0.7, 0.2), (0.2, 0.9), (0.6, 0.4), (0.5, 0.5), (0.9, 0.3)],
    "newcomer": [(0.6, 0.2), (0.2, 0.7), (0.8, 0.1), (0.1, 0.9), (0.3, 0.4), (0.7, 0.3), (0.4, 0.6), (0.5, 0.1)],
}


def _majority(votes) -> int:
    top = Counter(votes).most_common()
    return 0 if len(top) > 1 and top[0][1] == top[1][1] else top[0][0]


@pytest.fixture
def campaign_like(fiq_dataset):
    """A benchmark stored as a freeze stores it: makers per set, three votes per pair (one has two)."""
    names = {f"i{n}": ("dress", "shirt")[n % 2] for n in range(6)} | {"d": "dress", "s": "shirt"}
    ids = make_images(fiq_dataset, names)
    models = {name: ModelEntry.objects.create(name=name, family="demo") for name in MODELS}
    pk = [models[name].pk for name in MODELS]
    pairs = [
        PairSpec(reference_id=ids["d" if cat == "dress" else "s"], text=f"q{n}", set1=(ids["i1"],), set2=(ids["i2"],),
                 preference=_majority(votes), set1_model_id=None if a is None else pk[a],
                 set2_model_id=None if b is None else pk[b],
                 votes=tuple({"annotator": str(j), "choice": v} for j, v in enumerate(votes)))
        for n, (a, b, votes, cat) in enumerate(PAIRS)
    ]
    benchmark = benchmark_store(name="camp", source="campaign", dataset=fiq_dataset, pairs=pairs).benchmark
    return benchmark, models


def _score(model, benchmark, name):
    score, _ = ModelScore.objects.get_or_create(model=model, benchmark=benchmark)
    return model_score_store(score_id=score.pk, set1=[s for s, _ in SCORES[name]], set2=[s for _, s in SCORES[name]])


def _by_hand(name, *, skip_maker: int | None):
    """Agreement on the kept pairs (model tie ½, human ties out), and the model against each vote's leave-one-out
    majority (level or tie majorities out), written from the definitions."""
    agree, n, loo_num, loo_den = 0.0, 0, 0.0, 0
    for (a, b, votes, _), (s1, s2) in zip(PAIRS, SCORES[name], strict=True):
        if skip_maker is not None and skip_maker in (a, b):
            continue
        choice = 1 if s1 > s2 else 2 if s2 > s1 else 0
        verdict = _majority(votes)
        if verdict:
            agree += 0.5 if choice == 0 else float(choice == verdict)
            n += 1
        for j in range(len(votes)):
            others = _majority(votes[:j] + votes[j + 1:])
            if others:
                loo_den += 1
                loo_num += 0.5 if choice == 0 else float(choice == others)
    return agree / n, n, loo_num / loo_den


def test_a_maker_is_scored_on_the_pairs_it_did_not_make_and_a_newcomer_on_all(campaign_like):
    benchmark, models = campaign_like
    alpha = _score(models["alpha"], benchmark, "alpha")
    value, n, loo = _by_hand("alpha", skip_maker=0)
    assert (alpha.heldout_agreement, alpha.heldout_n_pairs) == (pytest.approx(value), n)
    assert n == 4 and alpha.n_pairs == 8  # pairs 0, 1 and 4 hold one of its sets; 6 is a human tie
    assert alpha.loo_agreement == pytest.approx(loo)
    assert alpha.heldout_agreement_low <= alpha.heldout_agreement <= alpha.heldout_agreement_high

    newcomer = ModelEntry.objects.create(name="newcomer", family="demo")
    fresh = _score(newcomer, benchmark, "newcomer")
    value, n, loo = _by_hand("newcomer", skip_maker=None)
    assert (fresh.heldout_agreement, fresh.heldout_n_pairs) == (pytest.approx(value), n)
    assert fresh.heldout_agreement == pytest.approx(fresh.agreement)  # made no set: held out of nothing
    assert fresh.loo_agreement == pytest.approx(loo)


def test_the_benchmark_keeps_its_leave_one_out_ceiling_and_its_chance_ratio(campaign_like):
    benchmark, _ = campaign_like
    num = den = 0
    for _, _, votes, _ in PAIRS:
        for j in range(len(votes)):
            others = _majority(votes[:j] + votes[j + 1:])
            if others:
                den += 1
                num += 0.5 if votes[j] == 0 else float(votes[j] == others)
    assert benchmark.ceiling_loo == pytest.approx(num / den)
    assert benchmark.ceiling_loo_low <= benchmark.ceiling_loo <= benchmark.ceiling_loo_high
    assert benchmark.ceiling_loo_pairs == 8
    verdicts = [_majority(v) for _, _, v, _ in PAIRS]
    assert benchmark.preference_ratio_chance == pytest.approx(verdicts.count(1) / len(verdicts) * (1 - 2 ** -8))
    assert list(benchmark.pairs.order_by("position").values_list("set1_makers", flat=True))[:2] == [
        [benchmark.pairs.get(position=0).set1_model_id]] * 2


def test_the_leaderboard_json_csv_and_page_show_held_out_agreement_with_n_the_ceiling_and_chance(campaign_like, client):
    benchmark, models = campaign_like
    _score(models["alpha"], benchmark, "alpha")
    newcomer = ModelEntry.objects.create(name="newcomer", family="demo")
    _score(newcomer, benchmark, "newcomer")
    # A score stored before held-out figures existed: shown with "–" until rescored.
    old = ModelScore.objects.create(model=models["beta"], benchmark=benchmark, status="finished", agreement=0.9,
                                    agreement_low=0.8, agreement_high=1.0, n_pairs=8)

    board = APIClient().get("/api/leaderboard/benchmarks/camp").json()
    assert board["sort"] == "-heldout"
    rows = {r["model"]: r for r in board["rows"]}
    assert [r["model"] for r in board["rows"]][-1] == "beta"  # no held-out figure yet: last
    assert rows["alpha"]["heldout_n_pairs"] == 4 and rows["newcomer"]["heldout_n_pairs"] == 7
    assert rows["beta"]["heldout_agreement"] is None
    assert board["human_ceiling"]["leave_one_out"] == pytest.approx(benchmark.ceiling_loo)
    assert board["benchmark"]["preference_ratio_chance"] == pytest.approx(benchmark.preference_ratio_chance)

    table = list(csv.DictReader(io.StringIO(APIClient().get("/api/leaderboard/benchmarks/camp/csv").content.decode())))
    by_model = {r["model"]: r for r in table}
    assert float(by_model["alpha"]["heldout_agreement"]) == pytest.approx(rows["alpha"]["heldout_agreement"])
    assert by_model["alpha"]["heldout_n_pairs"] == "4" and by_model["beta"]["heldout_agreement"] == ""
    assert float(by_model["alpha"]["human_ceiling_leave_one_out"]) == pytest.approx(benchmark.ceiling_loo)
    assert float(by_model["alpha"]["preference_ratio_chance"]) == pytest.approx(benchmark.preference_ratio_chance)
    dress = rows["alpha"]["by_category"]["dress"]
    assert float(by_model["alpha"]["agreement_dress_low"]) == pytest.approx(dress["agreement_low"])

    html = client.get("/leaderboard/camp/").content.decode()
    assert "Held-out agreement" in html and "n=4" in html and "n=7" in html
    assert f"<strong>{benchmark.ceiling_loo:.3f}</strong>" in html  # the ceiling, in the models' units
    assert f"<strong>{benchmark.preference_ratio_chance:.3f}</strong>" in html and "chance-line" in html
    assert f"[{dress['agreement_low']:.3f}, {dress['agreement_high']:.3f}] n={dress['n_pairs']}" in html
    assert "rescore to compute them" in html  # beta's held-out cell
    assert old.pk  # still listed with its all-pairs figure
    assert "0.900" in html


def test_freezing_records_every_model_whose_top_k_is_a_set(db):
    from annotate.models import Annotator, Comparison
    from tests.annotate.conftest import make_campaign, make_world
    from tests.leaderboard.test_services import _vote

    world = make_world(n_models=2, n_queries=4)
    campaign = make_campaign(world)
    # A third model, not in the campaign, whose latest run returns the first model's images.
    twin = ModelEntry.objects.create(name="twin", family="demo")
    first_run = RetrievalRun.objects.get(model=world.models[0])
    RetrievalRun.objects.create(model=twin, dataset=world.dataset, split="val", status="finished", topk=5,
                                results_path=first_run.results_path)
    annotators = [Annotator.objects.create(campaign=campaign, source="account") for _ in range(2)]
    comparisons = list(Comparison.objects.filter(campaign=campaign, is_gold=False))
    assert comparisons and settings.MEDIA_ROOT
    for c in comparisons:
        _vote(c, annotators[0], "a"), _vote(c, annotators[1], "a")

    benchmark = benchmark_freeze(campaign=campaign).benchmark
    first, second = world.models[0].pk, world.models[1].pk
    for pair in benchmark.pairs.all():
        for model_id, makers in ((pair.set1_model_id, pair.set1_makers), (pair.set2_model_id, pair.set2_makers)):
            assert makers[0] == model_id
            assert makers == ([first, twin.pk] if model_id == first else [second])


def test_a_pool_makes_sets_for_the_pairs_without_being_on_the_board(db):
    from annotate.models import Annotator, Comparison
    from annotate.services.campaign_build import campaign_build
    from annotate.services.campaigns import campaign_create
    from tests.annotate.conftest import make_world
    from tests.leaderboard.test_services import _vote

    world = make_world(n_models=3, n_queries=12)
    scored, pool = world.models[:2], world.models[2]
    campaign = campaign_create(slug="pooled", name="pooled", dataset=world.dataset, models=scored, pool_models=[pool],
                               gold_share=0.0, num_queries=12)
    campaign_build(campaign=campaign)
    comparisons = list(Comparison.objects.filter(campaign=campaign))
    with_pool = [c for c in comparisons if pool.pk in (c.set_a_model_id, c.set_b_model_id)]
    assert with_pool and len(with_pool) < len(comparisons)
    annotator = Annotator.objects.create(campaign=campaign, source="account")
    for c in comparisons:
        _vote(c, annotator, "a")
    benchmark = benchmark_freeze(campaign=campaign).benchmark

    for model in [*scored, pool]:  # the pool scored too, as "score every model" would
        score = ModelScore.objects.create(model=model, benchmark=benchmark)
        model_score_store(score_id=score.pk, set1=[1.0] * benchmark.n_pairs, set2=[0.0] * benchmark.n_pairs)
    board = APIClient().get(f"/api/leaderboard/benchmarks/{benchmark.name}").json()
    assert sorted(r["model_id"] for r in board["rows"]) == sorted(m.pk for m in scored)  # the pool is not on it
    for row in board["rows"]:
        held = [p for p in benchmark.pairs.all() if row["model_id"] not in p.set1_makers + p.set2_makers]
        assert row["heldout_n_pairs"] == len(held) > 0  # its held-out pairs: those between the other and the pool
        assert all(pool.pk in p.set1_makers + p.set2_makers for p in held)


@pytest.mark.django_db(transaction=True)
def test_benchmarks_and_scores_stored_before_get_makers_ceiling_and_held_out_figures_from_the_migration():
    import numpy as np
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("leaderboard", "0010_design_fill_labels_public")], [("leaderboard", "0012_heldout_fill")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        from hpbench.catalog.models import Dataset, Image  # the catalog stays at its latest migration
        from hpbench.catalog.models import ModelEntry as Model

        Benchmark, Pair, Score = (apps.get_model("leaderboard", n) for n in ("PreferenceBenchmark", "BenchmarkPair",
                                                                              "ModelScore"))
        dataset = Dataset.objects.create(name="old", kind="demo", image_root="/tmp")
        image = Image.objects.create(dataset=dataset, name="i", category="dress", split="val", file_path="i.png")
        alpha, beta = (Model.objects.create(name=n, family="demo") for n in ("alpha", "beta"))
        benchmark = Benchmark.objects.create(name="old", version=1, source="campaign", dataset_id=dataset.pk, n_pairs=3)
        rows = [(alpha, beta, [1, 1, 2]), (beta, None, [2, 2, 2]), (None, None, [1, 2, 1])]
        for n, (a, b, votes) in enumerate(rows):
            Pair.objects.create(benchmark=benchmark, position=n, reference_id=image.pk, text="t",
                                set1_model_id=a and a.pk, set2_model_id=b and b.pk,
                                preference=_majority(votes), votes=[{"annotator": str(j), "choice": v}
                                                                    for j, v in enumerate(votes)])
        Score.objects.create(model_id=alpha.pk, benchmark=benchmark, status="finished",
                             pair_choices=np.array([1, 2, 1], dtype=np.int8).tobytes())
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        pairs = apps.get_model("leaderboard", "BenchmarkPair").objects.filter(benchmark_id=benchmark.pk)
        assert [(p.set1_makers, p.set2_makers) for p in pairs.order_by("position")] == [
            ([alpha.pk], [beta.pk]), ([beta.pk], []), ([], [])]
        stored = apps.get_model("leaderboard", "PreferenceBenchmark").objects.get(pk=benchmark.pk)
        # Units (votes whose others have a strict majority): pair 0 the "2" (wrong), pair 1 all three, pair 2 the "2".
        assert stored.ceiling_loo == pytest.approx(3 / 5)
        assert stored.preference_ratio_chance == pytest.approx(2 / 3 * (1 - 2 ** -3))
        score = apps.get_model("leaderboard", "ModelScore").objects.get(model_id=alpha.pk)
        assert (score.heldout_agreement, score.heldout_n_pairs) == (pytest.approx(1.0), 2)  # pairs 1 and 2
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
