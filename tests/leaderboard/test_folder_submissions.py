"""Issue 23 item 1: every family the form offers is submittable. A folder-shaped checkpoint (the demo's
config.json + model.safetensors) travels as one .zip/.tar archive, checked from its directory while the upload
waits; a refused upload does not count against the quota; a failed submission cannot be published."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hpbench.leaderboard.models import Submission
from hpbench.leaderboard.services.submissions import submissions_counted_today

pytestmark = pytest.mark.django_db

DEMO = Path(__file__).resolve().parents[2] / "models_zoo" / "demo" / "checkpoints"


def zip_bytes(files: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)  # a symlink
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def tar_bytes(files: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return buffer.getvalue()


def demo_files(name: str = "demo-qure", prefix: str = "") -> dict[str, bytes]:
    return {f"{prefix}{f}": (DEMO / name / f).read_bytes() for f in ("config.json", "model.safetensors")}


@pytest.fixture
def api(researcher) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    return client


def post(api: APIClient, filename: str, data: bytes, family: str = "demo"):
    return api.post("/api/leaderboard/submissions",
                    {"family": family, "file": SimpleUploadedFile(filename, data)}, format="multipart")


def test_the_demo_weights_alone_are_refused_while_the_upload_waits_and_cost_no_submission(api, researcher):
    answer = post(api, "model.safetensors", (DEMO / "demo-qure" / "model.safetensors").read_bytes())
    assert answer.status_code == 400, answer.content
    assert "upload the folder as one .zip or .tar archive" in answer.json()["detail"]
    assert Submission.objects.count() == 0 and submissions_counted_today(owner=researcher) == 0


@pytest.mark.parametrize(("filename", "data", "message"), [
    ("ckpt.zip", zip_bytes({"config.json": b"{}"}), "missing model.safetensors"),
    ("ckpt.tar", tar_bytes({"a/config.json": b"{}", "b/model.safetensors": b"x"}), "missing config.json"),
    ("ckpt.zip", zip_bytes({**demo_files(), "../evil": b"x"}), "'..'"),
    ("ckpt.tar", tar_bytes({**demo_files(), "/etc/evil": b"x"}), "an absolute path"),
    ("ckpt.zip", zip_bytes(demo_files(), links=("clip_vit_L.pth",)), "not a regular file"),
    ("ckpt.tar", tar_bytes(demo_files(), links=("clip_vit_L.pth",)), "not a regular file"),
    ("ckpt.zip", zip_bytes({**demo_files(), **{f"x{n}": b"" for n in range(70)}}), "over the limit of 64"),
    ("ckpt.zip", b"PK\x03\x04 not really", "not a zip archive"),
    ("ckpt.tar.gz", b"\x1f\x8b", "upload the folder as one .zip or .tar archive"),
])
def test_a_bad_archive_is_refused_by_name_and_costs_no_submission(api, researcher, filename, data, message):
    answer = post(api, filename, data)
    assert answer.status_code == 400, answer.content
    assert message in answer.json()["detail"]
    assert Submission.objects.count() == 0 and submissions_counted_today(owner=researcher) == 0


def test_an_archive_declaring_more_than_the_limit_is_refused_before_unpacking(api, settings):
    settings.HPBENCH_MAX_CHECKPOINT_BYTES = 50_000_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**demo_files(), "zeros.bin": b"\0" * 20_000_000}.items():
            archive.writestr(name, data)
    assert len(buffer.getvalue()) < 2_000_000  # 20 MB of zeros deflate to KBs: over 4 times the archive
    answer = post(api, "bomb.zip", buffer.getvalue())
    assert answer.status_code == 400 and "unpack to" in answer.json()["detail"], answer.content
    assert Submission.objects.count() == 0


def test_a_family_registered_by_staff_is_neither_offered_nor_accepted(api, client, researcher):
    answer = post(api, "clip.zip", zip_bytes({"config.json": b"{}"}), family="clip_zeroshot")
    assert answer.status_code == 400 and "registered by staff" in answer.json()["detail"]
    client.force_login(researcher)
    page = client.get("/submissions/").content.decode()
    assert 'value="clip_zeroshot"' not in page and 'value="demo"' in page and ".zip,.tar" in page


@pytest.mark.parametrize(("filename", "make"), [("demo-qure.zip", zip_bytes), ("demo-qure.tar", tar_bytes)])
def test_a_demo_archive_is_stored_as_a_folder_the_worker_hands_to_the_loader(api, settings, filename, make):
    from hpbench import media

    settings.HPBENCH_SUBMISSION_DATASETS = []
    answer = post(api, filename, make(demo_files(prefix="demo-qure/")))
    assert answer.status_code == 201, answer.content
    model = Submission.objects.get().model
    folder = media.parent(model.checkpoint_file.name)
    assert sorted(n.rsplit("/", 1)[-1] for n, _ in media.walk(folder)) == ["config.json", "model.safetensors"]
    assert media.read_bytes(f"{folder}/model.safetensors") == (DEMO / "demo-qure" / "model.safetensors").read_bytes()

    from worker.embeddings import checkpoint_local  # the worker's view of it: the folder, which the loader takes

    local = Path(checkpoint_local(model))
    assert local.is_dir() and (local / "config.json").read_bytes() == (DEMO / "demo-qure" / "config.json").read_bytes()


def test_a_failed_submission_cannot_be_published(api, client, researcher, settings):
    settings.HPBENCH_SUBMISSION_DATASETS = []
    created = post(api, "demo.zip", zip_bytes(demo_files()))
    assert created.status_code == 201, created.content
    Submission.objects.filter(pk=created.json()["id"]).update(status=Submission.Status.FAILED)
    answer = api.post(f"/api/leaderboard/submissions/{created.json()['id']}/publish")
    assert answer.status_code == 409 and "failed, cannot be published" in answer.json()["detail"]
    assert not Submission.objects.get().is_public and not Submission.objects.get().model.is_public
    client.force_login(researcher)
    page = client.get(f"/submissions/{created.json()['id']}/").content.decode()
    assert ">Publish<" not in page
    client.post(f"/submissions/{created.json()['id']}/publish")
    assert not Submission.objects.get().is_public


def test_the_archive_check_runs_before_the_quota_so_a_bad_upload_at_the_limit_is_told_what_is_wrong(
    api, researcher, settings
):
    settings.HPBENCH_SUBMISSION_DATASETS = []
    settings.HPBENCH_SUBMISSIONS_PER_DAY = 1
    assert post(api, "bad.zip", zip_bytes({"config.json": b"{}"})).status_code == 400
    assert post(api, "demo.zip", zip_bytes(demo_files())).status_code == 201  # the refused one cost nothing
    late = post(api, "bad.zip", zip_bytes({"config.json": b"{}"}))
    assert late.status_code == 400 and "missing model.safetensors" in late.json()["detail"]
    assert post(api, "demo.zip", zip_bytes(demo_files())).status_code == 429
