"""Issue 23 item 3: a platform-hosted dataset's request file comes with its images (a streamed zip); the others
say where the official images are; the /submit/ page's worked example runs end to end (request file + images for
the demo, a trivial scorer, upload) and its figures appear."""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench.catalog.models import Dataset, Image
from hpbench.leaderboard.models import ModelScore, Submission
from tests.browser.test_demo_submission import _demo_benchmark

pytestmark = pytest.mark.django_db(transaction=True)


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_the_demo_images_come_as_a_streamed_zip_and_other_datasets_name_the_official_files(researcher, tmp_path):
    _demo_benchmark(tmp_path)
    demo = Dataset.objects.get(name="demo")
    api = _api(researcher)
    answer = api.get("/api/leaderboard/requests/images/demo")
    assert answer.status_code == 200 and answer.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(answer.streaming_content)))
    assert archive.testzip() is None
    images = list(Image.objects.filter(dataset=demo))
    assert sorted(archive.namelist()) == sorted(f"{i.name}.png" for i in images)
    first = images[0]
    with open(os.path.join(demo.image_root, first.file_path), "rb") as handle:
        assert archive.read(f"{first.name}.png") == handle.read()
    request = api.get("/api/leaderboard/requests/benchmarks/demo-board")
    assert request["X-Hpbench-Images"] == "/api/leaderboard/requests/images/demo"
    split = api.get("/api/leaderboard/requests/datasets/demo/val").json()
    assert split["images"]["archive"] == "/api/leaderboard/requests/images/demo"
    # FashionIQ's images may not be redistributed: no archive, the request file names the official files.
    Dataset.objects.filter(pk=demo.pk).update(kind=Dataset.Kind.FASHIONIQ)
    assert api.get("/api/leaderboard/requests/images/demo").status_code == 404
    split = api.get("/api/leaderboard/requests/datasets/demo/val").json()
    assert split["images"]["archive"] is None and "fashion-iq" in split["images"]["where"]
    assert "image_splits/split.<category>.<split>.json" in split["images"]["names"]
    from hpbench.leaderboard.request_images import images_source

    cirr = images_source(Dataset(name="cirr", kind=Dataset.Kind.CIRR))
    assert cirr["archive"] is None and "split.rc2.<split>.json" in cirr["names"] and "nlvr" in cirr["where"]
    # The admin marks a dataset shareable: its archive is offered.
    Dataset.objects.filter(pk=demo.pk).update(kind=Dataset.Kind.FASHIONIQ, shareable=True)
    assert api.get("/api/leaderboard/requests/images/demo").status_code == 200
    assert APIClient().get("/api/leaderboard/requests/images/demo").status_code in (401, 403)


def _independent_agreement(scores: dict[tuple[str, str], float], request: list[dict], human: list[int]) -> float:
    """Agreement from its definition: the set with the higher mean image score is the model's choice; a model
    tie counts one half; pairs the humans tied are left out."""
    hits = []
    for question, verdict in zip(request, human, strict=True):
        if verdict == 0:
            continue
        set1, set2 = question["set1"], question["set2"]
        s1 = np.mean([scores[(question["question"], i)] for i in set1])
        s2 = np.mean([scores[(question["question"], i)] for i in set2])
        hits.append(0.5 if s1 == s2 else float((1 if s1 > s2 else 2) == verdict))
    return float(np.mean(hits))


def test_the_submit_pages_worked_example_runs_end_to_end(celery_worker_process, live_server, researcher, tmp_path):
    board = _demo_benchmark(tmp_path)
    page = APIClient().get("/submit/").content.decode()
    script = html.unescape(re.search(r'<pre class="rs-example" id="rs-worked-example">(.*?)</pre>', page, re.S)
                           .group(1))
    assert f'"{board}"' in script  # the page names the demo benchmark
    (tmp_path / "example.py").write_text(script)
    token = Token.objects.get_or_create(user=researcher)[0].key
    run = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HPBENCH_URL": live_server.url, "HPBENCH_TOKEN": token})
    assert run.returncode == 0, run.stderr
    submission = Submission.objects.get()
    assert submission.model.name == "my-thumbnail-scorer" and submission.model.licence == "MIT"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        score = ModelScore.objects.filter(model=submission.model).first()
        if score is not None and score.status in ("finished", "failed"):
            break
        time.sleep(0.5)
    assert score is not None and score.status == "finished", (score and score.error, submission.log)
    # The figures, against an independent computation from the uploaded file and the benchmark's verdicts.
    scores = {}
    for line in (tmp_path / "scores.jsonl").read_text().splitlines():
        row = json.loads(line)
        scores[(row["question"], row["image"])] = row["score"]
    from hpbench.leaderboard.models import PreferenceBenchmark

    benchmark = PreferenceBenchmark.objects.get(name=board)
    pairs = list(benchmark.pairs.order_by("position"))
    names = dict(Image.objects.values_list("id", "name"))
    request = [{"question": f"{benchmark.label}/{p.position}", "set1": [names[i] for i in p.set1_image_ids],
                "set2": [names[i] for i in p.set2_image_ids]} for p in pairs]
    assert score.agreement == pytest.approx(_independent_agreement(scores, request, [p.preference for p in pairs]))
    shown = APIClient()
    shown.force_login(researcher)
    model_page = shown.get("/models/my-thumbnail-scorer/").content.decode()
    assert f"{score.agreement:.3f}" in model_page and "scores submitted by the authors" in model_page
