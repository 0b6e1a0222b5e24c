import json

import pytest
from django.core.management import CommandError, call_command

from hpbench.catalog.models import Dataset, Image, Query
from tests.catalog.conftest import build_fashioniq, write_json

pytestmark = pytest.mark.django_db


def run_import(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("import_dataset", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_imports_a_fashioniq_folder_with_captions_and_splits(fashioniq_root):
    summary = run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    assert summary["images"] == 12
    assert summary["queries"] == 5
    dataset = Dataset.objects.get(name="fiq")
    assert dataset.kind == "fashioniq"
    query = Query.objects.get(dataset=dataset, key="dress.val.1")
    assert (query.reference.name, query.target.name) == ("Dva2", "Dva3")
    assert query.captions == ["is shorter.", "is blue"]
    assert query.category == "dress" and query.split == "val"
    test_query = Query.objects.get(dataset=dataset, split="test")
    assert test_query.target is None
    assert Image.objects.get(dataset=dataset, name="Dte0").file_path == "images/Dte0.png"


def test_it_accepts_jpg_images_in_the_per_category_layout(tmp_path):
    root = build_fashioniq(tmp_path / "fiq", layout="image_data", suffix=".jpg")
    summary = run_import("fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val")
    assert summary["images"] == 4
    assert Image.objects.get(name="Dva0").file_path == "image_data/dress/Dva0.jpg"


def test_reimporting_is_idempotent_and_updates_changed_entries(fashioniq_root):
    run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    path = fashioniq_root / "captions" / "cap.dress.val.json"
    entries = json.loads(path.read_text())
    entries[0]["captions"] = ["is green", "has no sleeves"]
    write_json(path, entries)
    summary = run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    assert summary["images_created"] == 0 and summary["queries_created"] == 0
    assert Image.objects.count() == 12 and Query.objects.count() == 5
    assert Query.objects.get(key="dress.val.0").captions == ["is green", "has no sleeves"]


def test_missing_image_files_are_reported_and_their_queries_skipped(fashioniq_root):
    (fashioniq_root / "images" / "Dva1.png").unlink()
    summary = run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    assert summary["missing_image_names"] == ["Dva1"]
    assert summary["skipped_queries"] == 1
    assert not Query.objects.filter(key="dress.val.0").exists()
    assert Query.objects.filter(key="dress.val.1").exists()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda root: (root / "captions" / "cap.dress.val.json").write_text("[{"), "malformed JSON"),
        (lambda root: write_json(root / "captions" / "cap.dress.val.json", [{"candidate": "Dva0"}]),
         "cap.dress.val.json entry 0: missing field 'captions'"),
        (lambda root: write_json(root / "captions" / "cap.dress.val.json",
                                 [{"candidate": "Dva0", "target": "NOPE", "captions": ["a", "b"]}]),
         "target image 'NOPE' is not in split.dress.val.json"),
        (lambda root: (root / "images" / "Dva2.png").write_bytes(b"not an image"), "Dva2.png: unreadable image"),
    ],
)
def test_bad_input_names_the_file_and_entry_and_writes_nothing(fashioniq_root, mutate, message):
    mutate(fashioniq_root)
    with pytest.raises(CommandError, match="nothing was written") as excinfo:
        run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    assert message in str(excinfo.value)
    assert not Dataset.objects.exists() and not Image.objects.exists() and not Query.objects.exists()


def test_a_failed_reimport_keeps_the_previous_rows(fashioniq_root):
    run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    write_json(fashioniq_root / "captions" / "cap.dress.test.json", [{"captions": ["x"]}])
    with pytest.raises(CommandError):
        run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress")
    assert Query.objects.count() == 5


def test_it_imports_cirr_with_pairids_and_subsets(cirr_root):
    summary = run_import("cirr", str(cirr_root), "--name", "cirr", "--splits", "val", "test1")
    assert summary["images"] == 10 and summary["queries"] == 2
    val = Query.objects.get(key="val.7")
    assert val.pairid == 7 and val.target.name == "dev-1-img0"
    assert val.subset_members == ["dev-0-img0", "dev-1-img0", "dev-2-img0", "dev-3-img0"]
    assert val.extra["target_soft"] == {"dev-1-img0": 1.0}
    assert val.captions == ["show two of them"]
    test = Query.objects.get(key="test1.9")
    assert test.target is None
    assert Image.objects.get(name="dev-0-img0").file_path == "dev/dev-0-img0.png"


def test_cirr_entries_without_required_fields_are_refused(cirr_root):
    path = cirr_root / "cirr" / "captions" / "cap.rc2.val.json"
    entries = json.loads(path.read_text())
    del entries[0]["target_hard"]
    write_json(path, entries)
    with pytest.raises(CommandError, match=r"cap.rc2.val.json entry 0 \(pairid 7\): missing field 'target_hard'"):
        run_import("cirr", str(cirr_root), "--name", "cirr", "--splits", "val")


def test_an_unknown_split_is_refused(fashioniq_root):
    with pytest.raises(CommandError, match="unknown FashionIQ split 'dev'"):
        run_import("fashioniq", str(fashioniq_root), "--name", "fiq", "--splits", "dev")


def test_the_human_summary_lists_missing_images(fashioniq_root):
    from io import StringIO

    (fashioniq_root / "images" / "Dtr0.png").unlink()
    out = StringIO()
    call_command("import_dataset", "fashioniq", str(fashioniq_root), "--name", "fiq", "--categories", "dress",
                 stdout=out)
    text = out.getvalue()
    assert "Imported fiq (fashioniq): 11 images" in text
    assert "1 image files missing (their queries were skipped): Dtr0" in text
