"""Per-category figures (FashionIQ's dress, shirt, toptee): stored with each score and shown as columns."""

from __future__ import annotations

import csv
import io

import pytest

from hpbench.catalog.models import Dataset, ModelEntry
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.figures import category_figures
from hpbench.leaderboard.services.scores import model_score_store
from tests.leaderboard.conftest import make_images

pytestmark = pytest.mark.django_db

# (category of the reference, set-1 score, set-2 score, human verdict: 1, 2, 0 = tie)
CASES = [
    ("dress", 1.0, 0.0, 1), ("dress", 0.0, 1.0, 1), ("dress", 0.5, 0.5, 2), ("dress", 1.0, 0.0, 0),
    ("shirt", 1.0, 0.0, 1), ("shirt", 0.9, 0.1, 1), ("shirt", 0.0, 1.0, 2), ("shirt", 0.2, 0.8, 1),
    ("toptee", 0.0, 1.0, 2), ("toptee", 1.0, 0.0, 2),
]
# By hand. Agreement: 1 when the higher-scored set is the preferred one, 1/2 for a model tie, human ties left out.
# Preference ratio (Eq. 9): of the pairs with set 1 scored above set 2, the share where people preferred set 1.
HAND = {
    "dress": {"agreement": (1 + 0 + 0.5) / 3, "preference_ratio": 1 / 2, "n_pairs": 4},  # s1>s2: #1 (yes), #4 (tie)
    "shirt": {"agreement": (1 + 1 + 1 + 0) / 4, "preference_ratio": 2 / 2, "n_pairs": 4},
    "toptee": {"agreement": (1 + 0) / 2, "preference_ratio": 0 / 1, "n_pairs": 2},
}


def _benchmark(dataset, cases):
    names = {f"{c}{i}": c for i, (c, *_rest) in enumerate(cases)} | {"x": "dress", "y": "dress"}
    ids = make_images(dataset, names)
    pairs = [PairSpec(reference_id=ids[f"{c}{i}"], text=f"q{i}", set1=(ids["x"],), set2=(ids["y"],), preference=h)
             for i, (c, _s1, _s2, h) in enumerate(cases)]
    return benchmark_store(name="per-category", source="imported", dataset=dataset, pairs=pairs).benchmark


@pytest.fixture
def dataset(tmp_path):
    return Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))


def test_each_categorys_agreement_and_preference_ratio_equal_a_hand_computation(dataset):
    benchmark = _benchmark(dataset, CASES)
    model = ModelEntry.objects.create(name="m", family="demo")
    score = ModelScore.objects.create(model=model, benchmark=benchmark)
    stored = model_score_store(score_id=score.pk, set1=[c[1] for c in CASES], set2=[c[2] for c in CASES])
    assert sorted(stored.by_category) == ["dress", "shirt", "toptee"]
    for category, hand in HAND.items():
        figures = stored.by_category[category]
        assert figures["agreement"] == pytest.approx(hand["agreement"])
        assert figures["preference_ratio"] == pytest.approx(hand["preference_ratio"])
        assert figures["n_pairs"] == hand["n_pairs"]
        assert figures["agreement_low"] <= figures["agreement"] <= figures["agreement_high"]


def test_a_benchmark_of_one_category_stores_no_category_figures():
    assert category_figures(set1=[1, 0], set2=[0, 1], human=[1, 1], categories=["shirt", "shirt"]) == {}
    assert category_figures(set1=[1, 0], set2=[0, 1], human=[1, 1], categories=["", ""]) == {}


def test_the_leaderboard_shows_a_column_per_category_with_the_stored_figures(client, dataset):
    benchmark = _benchmark(dataset, CASES)
    model = ModelEntry.objects.create(name="m", family="demo", paper_url="https://arxiv.org/abs/1",
                                      code_url="https://github.com/example/m")
    score = ModelScore.objects.create(model=model, benchmark=benchmark)
    stored = model_score_store(score_id=score.pk, set1=[c[1] for c in CASES], set2=[c[2] for c in CASES])
    html = client.get(f"/leaderboard/{benchmark.name}/").content.decode()
    for category, hand in HAND.items():
        assert f'<th scope="col" class="lb-category">{category} ' in html
        low, high = stored.by_category[category]["agreement_low"], stored.by_category[category]["agreement_high"]
        cell = (f'data-category="{category}">{hand["agreement"]:.3f} <span class="muted lb-small">'
                f'[{low:.3f}, {high:.3f}] n={hand["n_pairs"]}')  # each cell with its interval
        assert cell in html
    assert '<a href="https://arxiv.org/abs/1" rel="noopener">paper</a>' in html
    assert '<a href="https://github.com/example/m" rel="noopener">code</a>' in html
    for words in ("chance</text>", "Arena: wins of own sets, votes N (M)", "Eq. 9", "human ceiling"):
        assert words in html
    assert html.count('class="agreement-plot') == 4  # agreement and preference ratio: the wide plots and the phone's
    csv_rows = list(csv.DictReader(io.StringIO(client.get(f"/api/leaderboard/benchmarks/{benchmark.name}/csv")
                                               .content.decode())))
    assert float(csv_rows[0]["agreement_shirt"]) == pytest.approx(HAND["shirt"]["agreement"])
    as_json = client.get(f"/api/leaderboard/benchmarks/{benchmark.name}").json()
    assert as_json["categories"] == ["dress", "shirt", "toptee"]
    assert as_json["rows"][0]["by_category"]["toptee"]["n_pairs"] == 2


def test_a_model_link_that_is_not_http_is_refused():
    from django.core.exceptions import ValidationError

    model = ModelEntry(name="m", family="demo", paper_url="javascript:alert(1)")
    with pytest.raises(ValidationError, match="paper_url"):
        model.full_clean()


def test_the_papers_manifest_sets_each_models_paper_and_code_links(tmp_path):
    from hpbench.leaderboard.paper import ManifestError, paper_table_register
    from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store

    dataset = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))
    ids = make_images(dataset, {"a": "dress", "b": "dress", "c": "dress"})
    pairs = [PairSpec(reference_id=ids["a"], text="is red", set1=(ids["b"],), set2=(ids["c"],), preference=1)]
    benchmark = benchmark_store(name="hp-fashioniq", source="imported", dataset=dataset, pairs=pairs).benchmark
    (tmp_path / "mgur.jsonl").write_text(
        '{"question": "hp-fashioniq-v1/0", "image": "b", "score": 1}\n'
        '{"question": "hp-fashioniq-v1/0", "image": "c", "score": 0}\n')
    spec = {"scores": "mgur.jsonl", "paper": "https://example.org/mgur.pdf", "code": "https://github.com/e/mgur"}
    with pytest.raises(ManifestError, match=r"models\['MGUR'\].code: expected an http\(s\) URL"):
        paper_table_register(manifest={"models": {"MGUR": {**spec, "code": "javascript:alert(1)"}}}, base=tmp_path,
                             benchmark=benchmark)
    [registered] = paper_table_register(manifest={"models": {"MGUR": spec}}, base=tmp_path, benchmark=benchmark)
    model = ModelEntry.objects.get(pk=registered.model.pk)
    assert (model.paper_url, model.code_url) == ("https://example.org/mgur.pdf", "https://github.com/e/mgur")
