"""Issue 23 item 2: researchers name their model (unique on the board), give a description, paper and code
links and a licence; each leaderboard row links to a model page with those, its scores per benchmark and runs
(and for the authors' scores how they were produced); private pages for the owner and staff only; the
submissions list shows name and score."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.models import ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store

pytestmark = pytest.mark.django_db

FIELDS = {"name": "my-cir-model", "description": "A composed-retrieval model of ours.",
          "paper_url": "https://arxiv.org/abs/2501.00001", "code_url": "https://github.com/ada/my-cir",
          "licence": "CC BY 4.0"}


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _checkpoint() -> SimpleUploadedFile:
    return SimpleUploadedFile("m.safetensors", save_safetensors({"w": np.zeros((2, 2), dtype=np.float32)}))


def _submit(user, **fields):
    return _api(user).post("/api/leaderboard/submissions", {"family": "clip4cir", "file": _checkpoint(), **fields},
                           format="multipart")


@pytest.fixture
def benchmark(fiq_dataset):
    from tests.leaderboard.conftest import make_images

    ids = list(make_images(fiq_dataset, {f"i{n}": "shirt" for n in range(5)}).values())
    pairs = [PairSpec(reference_id=ids[0], text=f"t{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                      preference=1 + n % 2) for n in range(6)]
    return benchmark_store(name="bench", source="imported", dataset=fiq_dataset, pairs=pairs).benchmark


def test_a_named_submission_carries_its_identity_and_a_taken_name_is_refused(researcher, outsider, settings):
    settings.HPBENCH_SUBMISSION_DATASETS = []
    answer = _submit(researcher, **FIELDS)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["model"] == "my-cir-model" and body["model_page"] == "/models/my-cir-model/"
    assert (body["paper_url"], body["code_url"], body["licence"]) == (FIELDS["paper_url"], FIELDS["code_url"],
                                                                      "CC BY 4.0")
    model = ModelEntry.objects.get(name="my-cir-model")
    assert model.description == FIELDS["description"] and model.licence == "CC BY 4.0"
    for fields, words in [({"name": "My-CIR-Model"}, "expected 3 to 64 lower-case"),
                          ({"name": "my-cir-model"}, "already taken"),
                          ({"name": "sub-123"}, "not 'sub-'"),
                          ({"paper_url": "javascript:alert(1)"}, "paper_url"),
                          ({"code_url": "ftp://x.org/a"}, "code_url")]:
        refused = _submit(outsider, **fields)
        assert refused.status_code == 400 and words in refused.json()["detail"], (fields, refused.content)
    assert Submission.objects.count() == 1


def test_the_board_links_each_row_to_its_model_page_private_to_its_owner_until_published(
    researcher, outsider, client, benchmark, settings
):
    settings.HPBENCH_SUBMISSION_DATASETS = []
    submission = Submission.objects.get(pk=_submit(researcher, **FIELDS).json()["id"])
    model = submission.model
    score = ModelScore.objects.get(model=model, benchmark=benchmark)
    model_score_store(score_id=score.pk, set1=[1.0, 0.0] * 3, set2=[0.5] * 6)  # agrees with every human choice
    RetrievalRun.objects.create(model=model, dataset=benchmark.dataset, split="val", status="finished",
                                metrics={"avg": 42.5})
    client.force_login(researcher)
    board = client.get("/leaderboard/bench/").content.decode()
    assert '<a href="/models/my-cir-model/">my-cir-model</a>' in board
    page = client.get("/models/my-cir-model/").content.decode()
    for text in ("A composed-retrieval model of ours.", FIELDS["paper_url"], FIELDS["code_url"], "CC BY 4.0",
                 "bench-v1", "1.000", "fiq/val", "42.5", "run on the platform", "private"):
        assert text in page, text
    client.force_login(outsider)
    assert client.get("/models/my-cir-model/").status_code == 404
    client.logout()
    assert client.get("/models/my-cir-model/").status_code == 404
    Submission.objects.filter(pk=submission.pk).update(status="finished")
    assert _api(researcher).post(f"/api/leaderboard/submissions/{submission.pk}/publish").status_code == 200
    assert client.get("/models/my-cir-model/").status_code == 200
    # The submissions list: name (linking to the page) and score.
    client.force_login(researcher)
    mine = client.get("/submissions/").content.decode()
    assert '<a href="/models/my-cir-model/">my-cir-model</a>' in mine and "bench-v1: 1.000" in mine


def test_the_authors_scores_page_says_how_they_were_produced(researcher, client):
    model = ModelEntry.objects.create(name="their-model", family="scores", owner=researcher, licence="MIT")
    Submission.objects.create(owner=researcher, model=model, family="scores", status="finished")
    client.force_login(researcher)
    page = client.get("/models/their-model/").content.decode()
    assert "scores submitted by the authors" in page and "with their own code" in page and "MIT" in page


def test_the_form_takes_the_name_and_links(researcher, client, settings):
    settings.HPBENCH_SUBMISSION_DATASETS = []
    client.force_login(researcher)
    answer = client.post("/submissions/", {"family": "clip4cir", "file": _checkpoint(), **FIELDS})
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    model = ModelEntry.objects.get(name="my-cir-model")
    assert (model.paper_url, model.code_url, model.licence) == (FIELDS["paper_url"], FIELDS["code_url"], "CC BY 4.0")


def test_a_chosen_name_never_inherits_files_a_deleted_model_of_that_name_left_in_its_folder(researcher, settings):
    from pathlib import PurePosixPath

    from hpbench import media

    settings.HPBENCH_SUBMISSION_DATASETS = []
    old = ModelEntry(name="my-cir-model", family="clip4cir")
    folder = str(PurePosixPath(old.checkpoint_file.field.generate_filename(old, "my-cir-model/x")).parent)
    media.save_bytes(f"{folder}/clip_vit_L.pth", b"someone else's ViT")  # the loader would read it beside the file
    assert _submit(researcher, name="my-cir-model").status_code == 201
    stored = [name.rsplit("/", 1)[-1] for name, _ in media.walk(folder)]
    assert stored == ["m.safetensors"]
