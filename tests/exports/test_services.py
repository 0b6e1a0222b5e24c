"""Exporting the preference dataset: every format read back and compared with the database."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import yaml

from annotate.quality import krippendorff_alpha_nominal, pairwise_agreement
from hpbench.exports import services, writers
from hpbench.exports.selectors import lookups
from hpbench.exports.selectors.card import AgreementAccumulator
from hpbench.exports.selectors.columns import VOTE_COLUMNS
from hpbench.exports.selectors.params import ExportError, params_parse
from hpbench.exports.selectors.votes import vote_rows
from tests.exports.conftest import SECRET_EMAIL, SECRET_HASH, SECRET_SESSION, SECRET_STUDY, SECRET_USERNAME

pytestmark = pytest.mark.django_db


def expected_votes(world, votes) -> list[dict]:
    """The vote rows, built from the ORM objects (independently of the selector)."""
    names = {pk: img.name for pk, img in world.images.items()}
    out = []
    for v in sorted(votes, key=lambda v: v.pk):
        c = v.comparison
        out.append(
            {
                "vote_id": v.pk,
                "campaign": c.campaign.slug,
                "comparison_id": c.pk,
                "dataset": world.dataset.name,
                "reference_image": c.reference_image.name,
                "captions": c.query.captions,
                "text": c.text,
                "target_image": c.query.target.name,
                "set_a_images": [names[i] for i in c.set_a_images],
                "set_b_images": [names[i] for i in c.set_b_images],
                "set_a_model": c.set_a_model.name if c.set_a_model else None,
                "set_b_model": c.set_b_model.name if c.set_b_model else None,
                "annotator": v.annotator.pseudonym,
                "choice": v.choice,
                "tie": v.choice == "tie",
                "rating_a": v.rating_a,
                "rating_b": v.rating_b,
                "irrelevant": v.irrelevant,
                "gold": c.is_gold,
                "excluded": v.excluded or v.annotator.flagged,
                "time_ms": v.time_ms,
                "created_at": v.created_at,
            }
        )
    return out


def counted(world, *, campaign=True):
    votes = [v for v in world.votes if not v.excluded and not v.annotator.flagged]
    return [v for v in votes if v.comparison.campaign_id == world.campaign.pk] if campaign else votes


def export(tmp_path, fmt, name="out", **filters):
    params = params_parse(**filters)
    out = tmp_path / name
    return services.export_write(params=params, fmt=fmt, out=out, chunk_size=3), out


def all_text(path) -> str:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in files)


def assert_no_identities(text: str) -> None:
    for secret in (SECRET_USERNAME, SECRET_EMAIL, SECRET_HASH, SECRET_STUDY, SECRET_SESSION, "e" * 64, "d" * 64):
        assert secret not in text


def test_parquet_has_one_row_per_counted_vote_and_one_row_group_per_chunk(export_world, tmp_path):
    summary, out = export(tmp_path, "parquet", "v.parquet", campaigns=[export_world.campaign.slug])
    table = pq.read_table(out)
    expected = expected_votes(export_world, counted(export_world))
    assert summary.rows == table.num_rows == 7
    assert table.to_pylist() == expected
    assert pq.ParquetFile(out).num_row_groups == 3  # 7 rows in chunks of 3
    assert table.schema.field("created_at").type.tz == "UTC"
    assert table.schema.field("set_a_images").type.value_type.equals(
        writers.arrow_schema(VOTE_COLUMNS).field("set_a_images").type.value_type
    )
    assert_no_identities(all_text(out))


def test_jsonl_rows_equal_the_database(export_world, tmp_path):
    _summary, out = export(tmp_path, "jsonl", "v.jsonl", campaigns=[export_world.campaign.slug])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = expected_votes(export_world, counted(export_world))
    for row in expected:
        row["created_at"] = row["created_at"].isoformat()
    assert rows == expected
    assert_no_identities(out.read_text())


def test_csv_writes_lists_as_json_text_and_round_trips(export_world, tmp_path):
    _summary, out = export(tmp_path, "csv", "v.csv", campaigns=[export_world.campaign.slug], include_excluded=True)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = expected_votes(
        export_world, [v for v in export_world.votes if v.comparison.campaign_id == export_world.campaign.pk]
    )
    assert len(rows) == len(expected) == 8
    for got, want in zip(rows, expected, strict=True):
        assert json.loads(got["set_a_images"]) == want["set_a_images"]
        assert json.loads(got["captions"]) == want["captions"]
        assert got["annotator"] == want["annotator"] and got["choice"] == want["choice"]
        assert got["excluded"] == ("true" if want["excluded"] else "false")
        assert got["rating_a"] == ("" if want["rating_a"] is None else str(want["rating_a"]))
        assert dt.datetime.fromisoformat(got["created_at"]) == want["created_at"]
        assert got["set_a_model"] == (want["set_a_model"] or "")
    assert_no_identities(out.read_text())


def test_comparison_rows_carry_the_vote_counts_majority_and_agreement(export_world, tmp_path):
    _summary, out = export(
        tmp_path, "parquet", "c.parquet", campaigns=[export_world.campaign.slug], level="comparisons"
    )
    rows = {r["comparison_id"]: r for r in pq.read_table(out).to_pylist()}
    c0, c1, c2, c3 = export_world.comparisons
    assert set(rows) == {c0.pk, c1.pk, c2.pk, c3.pk}
    # c0: a, a (the flagged annotator's b is left out)
    assert (rows[c0.pk]["votes"], rows[c0.pk]["votes_a"], rows[c0.pk]["votes_b"]) == (2, 2, 0)
    assert rows[c0.pk]["majority"] == "a" and rows[c0.pk]["agreement"] == 1.0
    assert rows[c0.pk]["mean_rating_a"] == 4.5 and rows[c0.pk]["mean_rating_b"] == 2.5
    # c1: tie, b -> level at the top: tie; one irrelevant flag; agreement 0
    assert (rows[c1.pk]["ties"], rows[c1.pk]["votes_b"], rows[c1.pk]["irrelevant"]) == (1, 1, 1)
    assert rows[c1.pk]["majority"] == "tie" and rows[c1.pk]["agreement"] == 0.0
    assert rows[c2.pk]["agreement"] is None and rows[c2.pk]["majority"] == "b"
    assert rows[c3.pk]["gold"] is True and rows[c3.pk]["set_a_model"] is None
    assert rows[c0.pk]["set_b_images"] == [export_world.images[i].name for i in c0.set_b_images]

    _summary, out = export(
        tmp_path,
        "parquet",
        "c2.parquet",
        campaigns=[export_world.campaign.slug],
        level="comparisons",
        include_excluded=True,
        include_gold=False,
    )
    rows = {r["comparison_id"]: r for r in pq.read_table(out).to_pylist()}
    assert c3.pk not in rows
    assert (rows[c0.pk]["votes_a"], rows[c0.pk]["votes_b"]) == (2, 1)
    assert rows[c0.pk]["agreement"] == pytest.approx(1 / 3)


def test_filters_pick_campaigns_dates_gold_and_excluded_votes(export_world, tmp_path):
    def ids(**filters) -> list[int]:
        return [r["vote_id"] for chunk in vote_rows(params_parse(**filters)) for r in chunk]

    v = export_world.votes
    everything = ids()
    assert everything == sorted(x.pk for x in counted(export_world, campaign=False))
    assert ids(campaigns=[export_world.other.slug]) == [v[8].pk]
    assert ids(campaigns=[export_world.campaign.slug], include_excluded=True) == [x.pk for x in v[:8]]
    assert v[6].pk not in ids(include_gold=False) and v[7].pk not in ids(include_gold=False)
    assert ids(since="2026-03-11", until="2026-03-12") == [v[3].pk, v[4].pk, v[5].pk, v[6].pk]
    assert ids(until="2026-03-10") == [v[0].pk, v[1].pk, v[8].pk]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"campaigns": ["nope"]}, "no campaign 'nope'"),
        ({"benchmark": "missing"}, "no benchmark 'missing'"),
        ({"benchmark": "x:abc"}, "not a whole number"),
        ({"since": "2026-13-01"}, "since: '2026-13-01' is not a date"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "is after until"),
        ({"level": "pairs"}, "level: 'pairs'"),
        ({"until": "9999-12-31"}, "until: 9999-12-31 is out of range"),
        ({"since": "0001-01-01"}, "since: 0001-01-01 is out of range"),
    ],
)
def test_bad_filters_are_refused_with_a_clear_message(export_world, filters, message):
    with pytest.raises(ExportError, match=message.replace("(", r"\(")):
        params_parse(**filters)


def test_the_hf_folder_opens_as_parquet_and_its_card_describes_it(export_world, tmp_path):
    summary, out = export(tmp_path, "hf", "hf", campaigns=[export_world.campaign.slug], include_excluded=True)
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] is None  # left for the admin
    data_file = header["configs"][0]["data_files"][0]["path"]
    table = pads.dataset(str(out / data_file), format="parquet").to_table()
    assert table.num_rows == header["dataset_info"]["splits"][0]["num_examples"] == summary.rows == 8
    assert [f["name"] for f in header["dataset_info"]["features"]] == table.column_names
    assert {"name": "set_a_images", "sequence": "string"} in header["dataset_info"]["features"]
    # the card's agreement is over non-gold comparisons and non-excluded votes, as quality control counts it
    units = {0: ["a", "a"], 1: ["tie", "b"]}  # c2 has one vote
    figures = summary.extra["figures"]
    assert figures["pairwise_agreement"] == pytest.approx(pairwise_agreement(units))
    assert figures["krippendorff_alpha"] == pytest.approx(krippendorff_alpha_nominal(units))
    assert figures["votes"] == 8 and figures["excluded"] == 1 and figures["ties"] == 1 and figures["gold"] == 2
    assert "How it was collected" in card and "Tie and exclusion policy" in card and "`annotator`" in card
    assert_no_identities(all_text(out))


def test_the_agreement_accumulator_equals_quality_control_on_random_units():
    import random

    rng = random.Random(0)
    units = {
        i: [rng.choice("ab") + ("" if rng.random() < 0.8 else "x") for _ in range(rng.randint(1, 5))]
        for i in range(200)
    }
    acc = AgreementAccumulator()
    for labels in units.values():
        acc.add(dict(Counter(labels)))
    assert acc.pairwise_agreement == pytest.approx(pairwise_agreement(units))
    assert acc.alpha == pytest.approx(krippendorff_alpha_nominal(units))


def test_the_hpfiq_layout_of_votes_groups_questions_by_pseudonymous_user_and_skips_ties(export_world, tmp_path):
    summary, out = export(tmp_path, "hpfiq", "v.json", campaigns=[export_world.campaign.slug])
    data = json.loads(out.read_text())
    assert summary.extra == {"questions": 6, "skipped_ties": 1}
    assert set(data) == {"user_1", "user_2"}
    block = data["user_1"]["question_set_1"]
    assert list(block) == [
        "ref_img_paths",
        "targ_img_paths",
        "sentences",
        "retrieved_set1",
        "retrieved_set2",
        "preferred set",
    ]
    c0 = export_world.comparisons[0]
    folder = c0.query.category  # every path of a question under its query's category, as in the release
    names = {pk: img.name for pk, img in export_world.images.items()}
    assert block["ref_img_paths"][0] == f"/-/image_data/{folder}/{c0.reference_image.name}.jpg"
    assert block["targ_img_paths"][0] == f"/-/image_data/{folder}/{c0.query.target.name}.jpg"
    assert block["retrieved_set1"][0] == {
        "img_path": [f"/-/image_data/{folder}/{names[i]}.jpg" for i in c0.set_a_images],
        "user_score": "4",
    }
    assert block["preferred set"] == ["1", "2", "1"]  # c0 a, (c1 tie skipped), c2 b, c3 a
    assert_no_identities(out.read_text())
    with pytest.raises(ExportError, match="hpfiq"):
        export(tmp_path, "hpfiq", "c.json", level="comparisons")


def test_a_frozen_campaign_benchmark_exports_one_row_per_pair_with_pseudonyms(export_world, tmp_path):
    from hpbench.leaderboard.services.benchmarks import benchmark_freeze

    result = benchmark_freeze(campaign=export_world.campaign, name="exp-bench")
    summary, out = export(tmp_path, "jsonl", "p.jsonl", benchmark=f"exp-bench:{result.benchmark.version}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.level == "pairs" and len(rows) == result.benchmark.n_pairs == 2  # c2: both irrelevant
    c0 = export_world.comparisons[0]
    first = rows[0]
    assert first["source_key"] == f"comparison:{c0.pk}" and first["preference"] == 1
    assert first["set1_images"] == [export_world.images[i].name for i in c0.set_a_images]
    votes = json.loads(first["votes_json"])
    assert {v["annotator"] for v in votes} == {a.pseudonym for a in export_world.annotators[:2]}
    assert_no_identities(out.read_text())


def _strip_folders(data: dict) -> dict:
    """The file with every path's category folder removed (``/-/image_data/shirt/X.jpg`` -> ``X.jpg``)."""

    def name(path: str) -> str:
        return path.rsplit("/", 1)[1]

    return {
        user: {
            qset: {
                **block,
                "ref_img_paths": [name(p) for p in block["ref_img_paths"]],
                "targ_img_paths": [name(p) for p in block["targ_img_paths"]],
                **{
                    key: [{**e, "img_path": [name(p) for p in e["img_path"]]} for e in block[key]]
                    for key in ("retrieved_set1", "retrieved_set2")
                },
            }
            for qset, block in sets.items()
        }
        for user, sets in data.items()
    }


def test_the_real_hpfiq_file_comes_back_unchanged_after_import_and_export(db, hpfiq_path, tmp_path):
    """Same users, question sets, order, sentences, sets, scores and preferences. The category folder of a
    question comes from its linked FashionIQ query; the file names one (reference, target) pair under two
    categories, and a pair links one query, so only that pair's questions may differ, and only in folders."""
    from hpbench.catalog.models import Dataset, Image, Query
    from hpbench.leaderboard.hpfiq import image_names, load_questions
    from hpbench.leaderboard.services.benchmarks import benchmark_import_hpfiq

    original = json.loads(hpfiq_path.read_text())
    questions = load_questions(hpfiq_path)
    dataset = Dataset.objects.create(name="fiq-rt", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))
    Image.objects.bulk_create(
        [
            Image(dataset=dataset, name=n, category=c, split="val", file_path=f"{c}/{n}.jpg")
            for n, c in image_names(questions).items()
        ],
        batch_size=2000,
    )
    ids = dict(Image.objects.filter(dataset=dataset).values_list("name", "id"))
    # The dataset's FashionIQ queries (pairs keep their target and category through the linked query).
    categories: dict[tuple[str, str], set[str]] = {}
    for q in questions:
        categories.setdefault((q.reference.name, q.target.name), set()).add(q.reference.category)
    Query.objects.bulk_create(
        [
            Query(dataset=dataset, key=f"{c}-{r}-{t}", split="val", category=c, reference_id=ids[r], target_id=ids[t])
            for (r, t), cats in sorted(categories.items())
            for c in sorted(cats)
        ],
        batch_size=2000,
    )
    ambiguous = {pair for pair, cats in categories.items() if len(cats) > 1}
    result = benchmark_import_hpfiq(path=hpfiq_path, dataset=dataset)
    summary, out = export(tmp_path, "hpfiq", "hpfiq.json", benchmark=result.benchmark.name)
    exported = json.loads(out.read_text())
    assert summary.extra == {"questions": 3050, "skipped_ties": 0}
    assert _strip_folders(exported) == _strip_folders(original)
    assert len(ambiguous) == 1
    for q in questions:
        if (q.reference.name, q.target.name) not in ambiguous:
            user, qset, i = q.key.split("/")
            for field in ("ref_img_paths", "targ_img_paths", "retrieved_set1", "retrieved_set2"):
                assert exported[user][qset][field][int(i)] == original[user][qset][field][int(i)]


def test_rows_stay_right_when_the_name_caches_are_emptied_between_chunks(export_world, tmp_path, monkeypatch):
    monkeypatch.setattr(lookups, "_CACHE_LIMIT", 4)
    rows = [r for chunk in vote_rows(params_parse(include_excluded=True), chunk_size=2) for r in chunk]
    assert rows == expected_votes(export_world, export_world.votes)
