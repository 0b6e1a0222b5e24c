"""An image FashionIQ lists under two categories is in both categories' galleries (issue 21 item 8).

The official evaluation (CLIP4Cir / SPRC / QuRe ``FashionIQDataset``) ranks each category's queries
(``cap.<category>.<split>.json``) against exactly the names of ``split.<category>.<split>.json``.
"""

from __future__ import annotations

import json

import pytest

from hpbench.catalog.importers import import_fashioniq
from hpbench.catalog.models import Dataset, Image, ImageListing
from hpbench.catalog.protocol import retrieval_groups
from hpbench.leaderboard.models import BenchmarkPair, ModelScore
from hpbench.leaderboard.services.benchmarks import benchmark_import_hpfiq
from hpbench.leaderboard.services.scores import model_score_store
from tests.catalog.conftest import SHARED, build_fashioniq_listed_twice

pytestmark = pytest.mark.django_db


def _split_file(root, category):
    return json.loads((root / "image_splits" / f"split.{category}.val.json").read_text())


def _caption_file(root, category):
    return json.loads((root / "captions" / f"cap.{category}.val.json").read_text())


@pytest.fixture
def root(tmp_path):
    return build_fashioniq_listed_twice(tmp_path / "fiq", per_category=12)


def test_every_categorys_gallery_is_exactly_its_split_file(root):
    report = import_fashioniq(root, name="fiq", splits=["val"])
    dataset = Dataset.objects.get(name="fiq")
    assert Image.objects.filter(dataset=dataset, name=SHARED).count() == 1  # one row, two listings
    assert report.images_listed_twice == [SHARED] and report.as_dict()["images_listed_twice"] == 1
    groups = retrieval_groups(dataset=dataset, split="val")
    assert sorted(groups) == ["dress", "shirt", "toptee"]
    names = dict(Image.objects.filter(dataset=dataset).values_list("id", "name"))
    for category, (gallery, queries) in groups.items():
        assert sorted(names[i] for i in gallery) == sorted(_split_file(root, category))
        expected = [(e["candidate"], e["target"]) for e in _caption_file(root, category)]
        assert [(q.reference.name, q.target.name) for q in queries] == expected
        assert all(q.target_id in gallery for q in queries)
    assert report.skipped_queries == 0


def test_reimporting_keeps_the_listings_and_follows_a_changed_split_file(root):
    import_fashioniq(root, name="fiq", splits=["val"])
    before = ImageListing.objects.count()
    import_fashioniq(root, name="fiq", splits=["val"])
    assert ImageListing.objects.count() == before
    names = [n for n in _split_file(root, "shirt") if n != SHARED]
    (root / "image_splits" / "split.shirt.val.json").write_text(json.dumps(names))
    entries = [e for e in _caption_file(root, "shirt") if e["target"] != SHARED]
    (root / "captions" / "cap.shirt.val.json").write_text(json.dumps(entries))
    report = import_fashioniq(root, name="fiq", splits=["val"])
    dataset = Dataset.objects.get(name="fiq")
    shirt, _ = retrieval_groups(dataset=dataset, split="val")["shirt"]
    assert Image.objects.get(name=SHARED).pk not in shirt and report.images_listed_twice == []


def test_a_query_whose_target_is_not_in_its_split_file_is_a_clear_error_and_nothing_is_written(root):
    entries = _caption_file(root, "toptee") + [{"candidate": "T0", "target": SHARED, "captions": ["a", "b"]}]
    (root / "captions" / "cap.toptee.val.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=rf"cap.toptee.val.json entry 4: target image '{SHARED}' is not in "
                                         r"split.toptee.val.json"):
        import_fashioniq(root, name="fiq", splits=["val"])
    assert not Dataset.objects.filter(name="fiq").exists() and not ImageListing.objects.exists()


def _hpfiq_file(path, questions):
    """The released layout: one annotator, one question set, parallel lists; paths /-/image_data/<category>/<name>."""
    block = {"ref_img_paths": [], "targ_img_paths": [], "sentences": [], "retrieved_set1": [], "retrieved_set2": [],
             "preferred set": []}
    for category, reference, target, set1, set2, preferred in questions:
        block["ref_img_paths"].append(f"/-/image_data/{category}/{reference}.jpg")
        block["targ_img_paths"].append(f"/-/image_data/{category}/{target}.jpg")
        block["sentences"].append("is longer and darker")
        block["retrieved_set1"].append({"img_path": [f"/-/image_data/{category}/{n}.jpg" for n in set1],
                                        "user_score": "4"})
        block["retrieved_set2"].append({"img_path": [f"/-/image_data/{category}/{n}.jpg" for n in set2],
                                        "user_score": "2"})
        block["preferred set"].append(str(preferred))
    path.write_text(json.dumps({"user_1": {"question_set_1": block}}))
    return path


def test_hp_fashioniq_pairs_count_under_the_category_of_their_own_paths(root, tmp_path):
    import_fashioniq(root, name="fiq", splits=["val"])
    dataset = Dataset.objects.get(name="fiq")
    # The shared image as a dress question's and as a shirt question's reference; scores pick set 1 every time.
    questions = [
        ("dress", SHARED, "D1", ["D2", "D3"], ["D4", "D5"], 1),
        ("dress", "D6", "D7", ["D2", "D3"], ["D4", "D5"], 2),
        ("shirt", SHARED, "S1", ["S2", "S3"], ["S4", "S5"], 1),
        ("shirt", "S6", "S7", ["S2", "S3"], ["S4", "S5"], 1),
        ("shirt", "S8", "S9", ["S2", "S3"], ["S4", "S5"], 1),
    ]
    result = benchmark_import_hpfiq(path=_hpfiq_file(tmp_path / "hpfiq.json", questions), dataset=dataset)
    pairs = list(BenchmarkPair.objects.filter(benchmark=result.benchmark).order_by("position"))
    assert [p.category for p in pairs] == [q[0] for q in questions]
    score = ModelScore.objects.create(model=_model(), benchmark=result.benchmark)
    stored = model_score_store(score_id=score.pk, set1=[1.0] * 5, set2=[0.0] * 5)
    # By hand from the file: dress 2 pairs, set 1 preferred once; shirt 3 pairs, set 1 preferred every time.
    assert stored.by_category["dress"]["n_pairs"] == 2 and stored.by_category["shirt"]["n_pairs"] == 3
    assert stored.by_category["dress"]["agreement"] == pytest.approx(1 / 2)
    assert stored.by_category["shirt"]["agreement"] == pytest.approx(1.0)


def _model():
    from hpbench.catalog.models import ModelEntry

    return ModelEntry.objects.create(name="m", family="demo")
