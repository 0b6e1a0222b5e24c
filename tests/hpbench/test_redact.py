"""Error text for researchers: no server paths, no traceback frames; staff read it in full."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.models import Dataset, RetrievalRun
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_fail
from hpbench.leaderboard.services.submissions import submission_refresh
from hpbench.redact import researcher_text

ERROR = (
    "CheckpointError: CLIP folder /srv/hpbench/models/private-clip-of-bob: not found\n\n"
    "Traceback (most recent call last):\n"
    '  File "/opt/hpbench/worker/scoring.py", line 120, in score_model_execute\n'
    "    model = model_for_entry(entry)\n"
    "models_zoo.errors.CheckpointError: Checkpoint /srv/hpbench/media/checkpoints/2026/11/model.safetensors: "
    "does not match"
)
SERVER_PARTS = ("/srv/", "/opt/", "hpbench/models", "private-clip-of-bob", "scoring.py", "media/checkpoints")


def test_paths_are_cut_to_their_last_part_and_tracebacks_are_left_out():
    text = researcher_text(ERROR)
    assert not any(part in text for part in SERVER_PARTS[:4]), text
    assert "CLIP folder <server path>: not found" in text and "Checkpoint …/model.safetensors: does not match" in text
    assert "Traceback: (left out)" in text and "score_model_execute" not in text
    assert researcher_text("see 'file:///etc/passwd' and \"/a b/c.pt\"") == "see '<server path>' and \"…/c.pt\""
    assert researcher_text("https://example.org/a/b 3/4 done") == "https://example.org/a/b 3/4 done"


@pytest.mark.django_db
def test_a_researcher_reads_the_errors_of_their_submission_without_server_paths_and_staff_read_them_whole(
    researcher, staff_user, client, tmp_path
):
    dataset = Dataset.objects.create(name="d", kind="fashioniq", image_root=str(tmp_path))
    image = dataset.images.create(name="i", split="val", file_path="i.png")
    benchmark_store(name="b", source="imported", dataset=dataset,
                    pairs=[PairSpec(reference_id=image.pk, text="t", set1=(image.pk,), set2=(image.pk,), preference=1)])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
    created = api.post("/api/leaderboard/submissions", {"family": "clip4cir", "file": upload},
                       format="multipart").json()
    submission = Submission.objects.get(pk=created["id"])
    score = ModelScore.objects.get(model=submission.model)
    model_score_fail(score_id=score.pk, error=ERROR)
    run = RetrievalRun.objects.create(model=submission.model, dataset=dataset, status="failed", error=ERROR)
    submission_refresh(submission=submission)

    detail = api.get(f"/api/leaderboard/submissions/{submission.pk}").content.decode()
    scores = api.get(f"/api/leaderboard/submissions/{submission.pk}/scores").content.decode()
    listed = api.get("/api/leaderboard/submissions").content.decode()
    run_api = api.get(f"/api/runs/{run.pk}/").content.decode()
    client.force_login(researcher)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    for shown in (detail, scores, listed, run_api, page):
        assert "does not match" in shown
        assert not any(part in shown for part in SERVER_PARTS), shown

    staff = APIClient()
    staff.force_authenticate(staff_user)
    detail = staff.get(f"/api/leaderboard/submissions/{submission.pk}").json()
    assert "/srv/hpbench/models/private-clip-of-bob" in detail["scores"][0]["error"]
    client.force_login(staff_user)
    assert "/srv/hpbench/models/private-clip-of-bob" in client.get(f"/submissions/{submission.pk}/").content.decode()
