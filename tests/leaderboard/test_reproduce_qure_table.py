"""The QuRe paper's HP-FashionIQ table, reproduced on tiny stand-ins: checkpoints of the zoo's families for the
rows it runs, score files for the others."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from hpbench.catalog.models import Dataset, Image
from hpbench.leaderboard.models import ReportedScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store

HUMAN = [1, 2, 2, 0]


@pytest.fixture
def hp_fashioniq(tmp_path):
    """6 stand-in PNG images and 4 pairs named like the real benchmark (people prefer set 1, 2, 2, tie)."""
    root = tmp_path / "images"
    root.mkdir()
    dataset = Dataset.objects.create(name="fiq-images", kind=Dataset.Kind.FASHIONIQ, image_root=str(root))
    rng = np.random.default_rng(0)
    ids = []
    for n in range(6):
        PILImage.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"im{n}.png")
        ids.append(Image.objects.create(dataset=dataset, name=f"im{n}", category="shirt", split="val",
                                        file_path=f"im{n}.png").pk)
    sets = [((1, 2), (3, 4)), ((3, 5), (1, 2)), ((0, 1), (2, 4)), ((4, 5), (0, 3))]
    pairs = [PairSpec(reference_id=ids[0], text="is red", set1=tuple(ids[i] for i in s1),
                      set2=tuple(ids[i] for i in s2), preference=h) for (s1, s2), h in zip(sets, HUMAN, strict=True)]
    benchmark_store(name="hp-fashioniq", source="imported", dataset=dataset, pairs=pairs)
    return sets


def _scores_file(path, sets, prefer_set1: list[bool]):
    """Relevance 1 for the images of the set the model should prefer, 0 for the other's."""
    lines = []
    for q, ((s1, s2), first) in enumerate(zip(sets, prefer_set1, strict=True)):
        for images, high in ((s1, first), (s2, not first)):
            lines += [json.dumps({"question": f"hp-fashioniq-v1/{q}", "image": f"im{i}", "score": float(high)})
                      for i in images]
    path.write_text("\n".join(lines) + "\n")
    return path.name


@pytest.mark.django_db(transaction=True)
def test_the_command_registers_the_papers_models_and_prints_its_figures_beside_the_platforms(
    celery_worker_process, hp_fashioniq, tmp_path, client
):
    from models_zoo.tiny import make_tiny_blip2, make_tiny_blip2_lavis, make_tiny_clip4cir

    folder = tmp_path / "files"
    folder.mkdir()
    make_tiny_blip2(folder / "qure")
    make_tiny_clip4cir(folder / "clip4cir")
    sprc = make_tiny_blip2_lavis(folder / "sprc")
    # Eq. 9 by hand, people preferring 1, 2, 2, tie: MGUR prefers set 1 everywhere -> 1/4; CoVR-BLIP never -> 0;
    # CoSMo prefers set 1 on pairs 0, 2, 3 -> 1/3.
    manifest = {"models": {
        "QuRe": {"family": "blip2_cir", "variant": "qure", "checkpoint": "qure"},
        "CLIP4CIR": {"family": "clip4cir", "checkpoint": "clip4cir"},
        "SPRC": {"family": "blip2_cir", "variant": "sprc", "checkpoint": str(sprc.relative_to(folder))},
        "MGUR": {"scores": _scores_file(folder / "mgur.jsonl", hp_fashioniq, [True] * 4)},
        "CoVR-BLIP": {"scores": _scores_file(folder / "covr.jsonl", hp_fashioniq, [False] * 4)},
        "CoSMo": {"scores": _scores_file(folder / "cosmo.jsonl", hp_fashioniq, [True, False, True, True])},
    }}
    (folder / "qure-table.json").write_text(json.dumps(manifest))
    out = io.StringIO()
    call_command("reproduce_qure_table", "--manifest", str(folder / "qure-table.json"), "--wait", "--timeout", "300",
                 "--json", stdout=out, stderr=io.StringIO())
    rows = {r["label"]: r for r in json.loads(out.getvalue())["rows"]}
    assert list(rows) == ["QuRe", "CLIP4CIR", "MGUR", "SPRC", "CoVR-BLIP", "CoSMo", "Bi-BLIP4CIR"]
    assert [rows[k]["paper"] for k in rows] == [74.55, 74.45, 73.99, 73.82, 73.15, 72.96, 67.33]
    assert all(rows[k]["status"] == "finished" for k in manifest["models"]), rows
    assert rows["MGUR"]["platform"] == 25.0 and rows["CoVR-BLIP"]["platform"] == 0.0
    assert rows["CoSMo"]["platform"] == pytest.approx(100 / 3)
    assert rows["MGUR"]["difference"] == pytest.approx(25.0 - 73.99) and rows["MGUR"]["how"] == "scores submitted"
    for label in ("QuRe", "CLIP4CIR", "SPRC"):
        assert rows[label]["how"] == "run on the platform" and 0.0 <= rows[label]["platform"] <= 100.0
    assert rows["Bi-BLIP4CIR"]["model"] is None and rows["Bi-BLIP4CIR"]["platform"] is None

    # The text table, and the leaderboard page with the paper's figure beside the platform's.
    text = io.StringIO()
    call_command("reproduce_qure_table", "--manifest", str(folder / "qure-table.json"), stdout=text,
                 stderr=io.StringIO())
    assert "MGUR           73.99     25.00  -48.99  scores submitted as paper-mgur" in text.getvalue()
    assert "Bi-BLIP4CIR    67.33         –       –  no checkpoint or scores given" in text.getvalue()
    html = client.get("/leaderboard/hp-fashioniq/").content.decode()
    assert "paper: 0.7399 (MGUR)" in html and "paper: 0.7455 (QuRe)" in html
    assert ReportedScore.objects.filter(model__isnull=False).count() == 6


@pytest.mark.django_db
def test_a_bad_manifest_entry_is_named_and_nothing_is_registered(hp_fashioniq, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"models": {"GPT": {"scores": "x.jsonl"}}}))
    with pytest.raises(CommandError, match=r"models\['GPT'\]: not a row of the paper's table"):
        call_command("reproduce_qure_table", "--manifest", str(tmp_path / "m.json"))
    (tmp_path / "bad.jsonl").write_text('{"question": "hp-fashioniq-v1/0", "image": "im1", "score": NaN}\n')
    (tmp_path / "m.json").write_text(json.dumps({"models": {"MGUR": {"scores": "bad.jsonl"}}}))
    with pytest.raises(CommandError, match="line 1: score nan"):
        call_command("reproduce_qure_table", "--manifest", str(tmp_path / "m.json"))
    assert not ReportedScore.objects.exists()
