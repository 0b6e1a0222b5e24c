"""Importing the released HP-FashionIQ file (the real ``hpfiq.json``)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from hpbench.catalog.models import Image, Query
from hpbench.leaderboard.models import BenchmarkPair, PreferenceBenchmark
from hpbench.leaderboard.services.benchmarks import benchmark_import_hpfiq

pytestmark = pytest.mark.django_db


def _run(path, *args) -> dict:
    out = io.StringIO()
    call_command("import_hpfiq", str(path), "--dataset", "fiq", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_it_imports_every_question_with_its_likert_scores_and_preferred_set(fiq_with_hpfiq_images, hpfiq_path):
    summary = _run(hpfiq_path)
    assert summary["pairs"] == summary["questions"] == 3050
    assert summary["missing_images"] == 0 and summary["version"] == 1
    raw = json.loads(hpfiq_path.read_text())
    block = raw["user_1"]["question_set_1"]
    pair = BenchmarkPair.objects.get(source_key="user_1/question_set_1/0")
    names = dict(Image.objects.filter(pk__in=pair.set1_image_ids + pair.set2_image_ids).values_list("id", "name"))
    assert [names[i] for i in pair.set1_image_ids] == [
        p.rsplit("/", 1)[1][:-4] for p in block["retrieved_set1"][0]["img_path"]
    ]
    assert pair.reference.name == "B000LUIBH8" and pair.text == block["sentences"][0].strip()
    assert pair.likert1 == 4 and pair.likert2 == 5 and pair.preference == 2
    assert pair.votes == [{"annotator": "user_1", "choice": 2, "likert1": 4, "likert2": 5}]
    pairs = BenchmarkPair.objects.filter(benchmark__name="hp-fashioniq")
    assert pairs.filter(preference=1).count() == 1641
    benchmark = PreferenceBenchmark.objects.get(name="hp-fashioniq")
    assert benchmark.human_agreement is None  # one annotator per question: no ceiling


def test_reimporting_the_same_file_keeps_the_same_version(fiq_with_hpfiq_images, hpfiq_path):
    first = _run(hpfiq_path)
    second = _run(hpfiq_path)
    assert (first["version"], first["created"]) == (1, True)
    assert (second["version"], second["created"]) == (1, False)
    assert PreferenceBenchmark.objects.count() == 1 and BenchmarkPair.objects.count() == 3050


def test_changed_content_becomes_a_new_active_version(fiq_with_hpfiq_images, hpfiq_path, tmp_path):
    _run(hpfiq_path)
    raw = json.loads(hpfiq_path.read_text())
    raw["user_1"]["question_set_1"]["preferred set"][0] = "1"
    changed = tmp_path / "hpfiq.json"
    changed.write_text(json.dumps(raw))
    summary = _run(changed)
    assert summary["version"] == 2 and summary["created"] is True
    active = PreferenceBenchmark.objects.get(is_active=True)
    assert active.version == 2
    assert active.pairs.get(source_key="user_1/question_set_1/0").preference == 1


def test_it_reports_unmappable_images_and_skips_their_questions(fiq_dataset, hpfiq_questions, hpfiq_path):
    from hpbench.leaderboard.hpfiq import image_names
    from tests.leaderboard.conftest import make_images

    names = image_names(hpfiq_questions)
    dropped = {hpfiq_questions[0].set1[0].name, hpfiq_questions[5].reference.name}
    make_images(fiq_dataset, {n: c for n, c in names.items() if n not in dropped})
    summary = _run(hpfiq_path)
    affected = [q for q in hpfiq_questions if dropped & {r.name for r in (q.reference, *q.set1, *q.set2)}]
    assert summary["missing_image_names"] == sorted(dropped)
    assert summary["skipped_questions"] == len(affected) >= 2
    assert summary["pairs"] == 3050 - len(affected)


def test_it_links_a_question_to_the_query_with_the_same_reference_and_target(
    fiq_with_hpfiq_images, hpfiq_questions, hpfiq_path
):
    q = hpfiq_questions[0]
    ids = dict(Image.objects.values_list("name", "id"))
    query = Query.objects.create(
        dataset=fiq_with_hpfiq_images, key="shirt-0", split="val", category="shirt",
        reference_id=ids[q.reference.name], target_id=ids[q.target.name], captions=["a", "b"],
    )
    result = benchmark_import_hpfiq(path=hpfiq_path, dataset=fiq_with_hpfiq_images)
    assert result.report["linked_queries"] >= 1
    assert BenchmarkPair.objects.get(source_key=q.key).query_id == query.pk


def test_it_names_the_place_of_a_malformed_question(fiq_dataset, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"user_1": {"question_set_1": {"ref_img_paths": ["/-/x/a.jpg"]}}}))
    with pytest.raises(CommandError, match=r"user_1/question_set_1: missing field"):
        _run(bad)


def test_it_refuses_an_unknown_dataset(tmp_path, db):
    with pytest.raises(CommandError, match="--dataset 'fiq': no such dataset"):
        _run(tmp_path / "x.json")
