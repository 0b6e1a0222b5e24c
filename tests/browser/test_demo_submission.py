"""Issue 23 item 1, end to end: each shipped demo checkpoint is submitted as one archive of its folder, through
the form (real Chromium) and through the API, evaluated by a real worker, and seen on the leaderboard."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench.catalog.models import Dataset, Image, Query
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.submissions import submission_refresh

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models_zoo" / "demo" / "checkpoints"
FILES = ("config.json", "model.safetensors")


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in FILES:
            archive.write(folder / name, f"{folder.name}/{name}")
    return buffer.getvalue()


def _tar(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w") as archive:
        for name in (*FILES, "train_log.jsonl"):  # extra files ride along
            archive.add(folder / name, arcname=name)
    return target


def _demo_benchmark(tmp_path: Path) -> str:
    from hpbench.catalog.demo import make_demo_dataset
    from hpbench.catalog.importers import import_fashioniq

    make_demo_dataset(tmp_path / "demo", seed=0, per_category=10)
    import_fashioniq(tmp_path / "demo", name="demo")
    dataset = Dataset.objects.get(name="demo")
    images = list(Image.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True))
    texts = [" and ".join(q.captions) for q in Query.objects.filter(dataset=dataset).order_by("id")[:12]]
    pairs = [PairSpec(reference_id=images[n], text=texts[n % len(texts)],
                      set1=(images[n + 1], images[n + 2]), set2=(images[n + 3], images[n + 4]), preference=1 + n % 2)
             for n in range(12)]
    return benchmark_store(name="demo-board", source="imported", dataset=dataset, pairs=pairs).benchmark.name


def _wait(submission_id: int, timeout: float = 300) -> Submission:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        submission = submission_refresh(submission=Submission.objects.get(pk=submission_id))
        if submission.status in Submission.DONE:
            return submission
        time.sleep(1)
    raise AssertionError(f"submission {submission_id} did not end within {timeout} s")


def test_each_shipped_demo_checkpoint_is_submitted_by_form_and_api_and_reaches_the_leaderboard(
    celery_worker_process, live_server, page, researcher, tmp_path, settings
):
    from django.test import Client

    board = _demo_benchmark(tmp_path)
    settings.HPBENCH_SUBMISSION_DATASETS = ["demo:val"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    client = Client()
    client.force_login(researcher)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    ids = []
    for name in ("demo-qure", "demo-contrastive"):
        # The API: a zip with the folder at its top.
        answer = api.post("/api/leaderboard/submissions",
                          {"family": "demo", "variant": "combiner",
                           "file": SimpleUploadedFile(f"{name}.zip", _zip(CHECKPOINTS / name))}, format="multipart")
        assert answer.status_code == 201, answer.content
        ids.append(answer.json()["id"])
        # The form: a tar of the folder's files, chosen in Chromium.
        page.goto("/submissions/")
        page.select_option("#id_family", "demo")
        # The variant list follows the family: demo's first variant is chosen.
        assert page.eval_on_selector("#id_variant", "e => e.options[e.selectedIndex].dataset.family") == "demo"
        assert page.eval_on_selector("#id_variant", "e => e.value") == "combiner"
        page.set_input_files("input[name=file]", str(_tar(CHECKPOINTS / name, tmp_path / f"{name}.tar")))
        page.get_by_role("button", name="Submit", exact=True).click()
        page.wait_for_url("**/submissions/*/")
        ids.append(int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert Submission.objects.count() == 4
    for pk in ids:
        submission = _wait(pk)
        assert submission.status == Submission.Status.FINISHED, submission.log
        score = ModelScore.objects.get(model=submission.model)
        assert score.status == "finished" and score.n_pairs == 12
    # The owner sees the private rows; published, everyone does.
    rows = api.get(f"/api/leaderboard/benchmarks/{board}").json()["rows"]
    assert sorted(r["model"] for r in rows) == sorted(Submission.objects.get(pk=pk).model.name for pk in ids)
    for pk in ids:
        page.goto(f"/submissions/{pk}/")
        page.get_by_role("button", name="Publish").click()
        page.wait_for_load_state()
    assert all(s.is_public for s in Submission.objects.all())
    anonymous = page.context.browser.new_context(base_url=live_server.url)
    try:
        public = anonymous.new_page()
        public.goto(f"/leaderboard/{board}/")
        names = public.locator("table.lb-table tbody tr").all_inner_texts()
        for pk in ids:
            assert any(Submission.objects.get(pk=pk).model.name in row for row in names), names
    finally:
        anonymous.close()
