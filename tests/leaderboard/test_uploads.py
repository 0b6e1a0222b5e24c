"""Upload abuse: oversized bodies refused before reading, streamed files capped, safetensors headers bounded."""

from __future__ import annotations

import http.client
import json
import struct
import tracemalloc
from urllib.parse import urlsplit

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.leaderboard.models import Submission
from hpbench.leaderboard.uploads import UploadError, check_checkpoint_upload, check_safetensors_header

GIB = 1024**3


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _safetensors_with_header(header: bytes, *, padding: int = 16) -> bytes:
    return struct.pack("<Q", len(header)) + header + b"\0" * padding


def _temporary_upload(tmp_path, name: str, content: bytes) -> TemporaryUploadedFile:
    upload = TemporaryUploadedFile(name, "application/octet-stream", len(content), None)
    upload.write(content)
    upload.flush()
    upload.seek(0)
    return upload


def _peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_a_30_mb_header_of_empty_lists_is_refused_without_reading_it(tmp_path):
    header = b"[" + b"[]," * (10 * 1024 * 1024) + b"[]]"  # 30 MiB of [],[],…
    upload = _temporary_upload(tmp_path, "junk.safetensors", _safetensors_with_header(header))
    errors: list[str] = []

    def check() -> None:
        with pytest.raises(UploadError) as caught:
            check_checkpoint_upload(upload)
        errors.append(str(caught.value))

    peak = _peak_bytes(check)
    assert f"safetensors header of {len(header)} bytes is over the limit of 8388608 bytes" in errors[0]
    assert peak < 1024 * 1024, f"refusing it took {peak} bytes"
    upload.close()


def test_a_header_inside_the_size_limit_is_refused_by_its_structure_before_json_builds_it(tmp_path):
    flat = b"[" + b"[]," * (2 * 1024 * 1024) + b"[]]"  # 6 MiB: 2M empty lists would take ~150 MB as Python objects
    deep = b"{" + b'"a":{"b":{"c":[[1]]}}' + b"}"
    long_array = b'{"t":{"dtype":"F32","shape":[' + b"1," * 2_500_000 + b'1],"data_offsets":[0,4]}}'
    upload = _temporary_upload(tmp_path, "flat.safetensors", _safetensors_with_header(flat))
    errors: list[str] = []

    def check() -> None:
        with pytest.raises(UploadError) as caught:
            check_checkpoint_upload(upload)
        errors.append(str(caught.value))

    peak = _peak_bytes(check)
    assert "arrays/objects, over the limit" in errors[0]
    assert peak < 40 * 1024 * 1024, f"refusing it took {peak} bytes"
    with pytest.raises(UploadError, match="nested deeper than 3 levels"):
        check_safetensors_header(deep, name="deep.safetensors")
    with pytest.raises(UploadError, match="over 2000000 items"):
        check_safetensors_header(long_array, name="long.safetensors")
    with pytest.raises(UploadError, match="header entry 'x' is not a tensor"):
        check_safetensors_header(b'{"x": [1, 2]}', name="odd.safetensors")
    # Brackets inside strings are not structure.
    tensor = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    tricky = json.dumps({"__metadata__": {"note": "[[[[{{{{"}, "w": tensor}).encode()
    assert set(check_safetensors_header(tricky, name="ok.safetensors")) == {"__metadata__", "w"}
    upload.close()


def test_a_real_safetensors_file_passes_and_is_left_at_its_start():
    content = save_safetensors({f"layer{i}.weight": np.zeros((4, 4), dtype=np.float32) for i in range(50)})
    upload = SimpleUploadedFile("model.safetensors", content)
    check_checkpoint_upload(upload)
    assert upload.tell() == 0 and upload.read() == content


@pytest.mark.django_db
def test_the_api_refuses_a_body_over_the_limit_by_its_content_length_without_reading_it(researcher):
    client = _client(researcher)
    # FakePayload(b"") raises if anything tries to read the 4 GiB the header announces.
    response = client.generic("POST", "/api/leaderboard/submissions", b"",
                              content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=str(4 * GIB))
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    body = response.json()
    assert f"request body of {4 * GIB} bytes is over the limit" in body["detail"]
    assert body["limit_bytes"] == 2 * GIB
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_the_submission_form_refuses_a_body_over_the_limit_by_its_content_length(researcher, client):
    client.force_login(researcher)
    response = client.generic("POST", "/submissions/", b"", content_type="multipart/form-data; boundary=x",
                              CONTENT_LENGTH=str(3 * GIB))
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_real_server_answers_413_to_a_4_gib_upload_after_its_headers_alone(live_server, researcher):
    token = Token.objects.create(user=researcher).key
    where = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    connection.putrequest("POST", "/api/leaderboard/submissions")
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Content-Type", "multipart/form-data; boundary=xyz")
    connection.putheader("Content-Length", str(4 * GIB))
    connection.endheaders(b"--xyz\r\n")  # a few bytes of the 4 GiB, then wait for the answer
    response = connection.getresponse()
    assert response.status == 413
    assert "over the limit" in json.loads(response.read())["detail"]
    connection.close()


@pytest.fixture
def small_limit(settings, tmp_path):
    """A 64 KiB checkpoint limit; every uploaded file goes to a temporary file in ``tmp_path``."""
    settings.HPBENCH_MAX_CHECKPOINT_BYTES = 64 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    return tmp_path


@pytest.mark.django_db
def test_a_file_over_the_limit_is_cut_off_while_it_streams_and_leaves_no_temporary_file(researcher, small_limit):
    tmp_path = small_limit
    big = SimpleUploadedFile("big.safetensors", b"\0" * (512 * 1024))  # inside Content-Length's slack
    response = _client(researcher).post("/api/leaderboard/submissions", {"family": "clip4cir", "file": big},
                                        format="multipart")
    assert response.status_code == 413
    assert "'big.safetensors': over the limit of 65536 bytes" in response.json()["detail"]
    assert list(tmp_path.iterdir()) == []
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_the_form_cuts_off_a_file_over_the_limit_too(researcher, client, small_limit):
    tmp_path = small_limit
    client.force_login(researcher)
    big = SimpleUploadedFile("big.safetensors", b"\0" * (512 * 1024))
    response = client.post("/submissions/", {"family": "clip4cir", "file": big})
    assert response.status_code == 413 and "over the limit of 65536 bytes" in response.json()["detail"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_each_upload_lies_in_a_folder_of_its_own(researcher):
    """Loaders read companion files beside a checkpoint (a ViT file, a vocabulary): never another researcher's."""
    client = _client(researcher)
    for _ in range(2):
        upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
        assert client.post("/api/leaderboard/submissions", {"family": "clip4cir", "file": upload},
                           format="multipart").status_code == 201
    paths = {s.model.name: s.model.checkpoint_file.path for s in Submission.objects.select_related("model")}
    assert len(paths) == 2
    for model_name, path in paths.items():
        assert path.rsplit("/", 2)[-2:] == [model_name, "model.safetensors"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/healthz", "/accounts/login/", "/api/annotate/votes", "/nowhere"])
def test_a_real_server_answers_413_to_a_large_anonymous_body_on_any_path(live_server, path):
    where = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", "multipart/form-data; boundary=xyz")
    connection.putheader("Cookie", "csrftoken=" + "a" * 32)
    connection.putheader("Content-Length", str(2 * GIB))
    connection.endheaders(b"--xyz\r\n")
    response = connection.getresponse()
    assert response.status == 413
    body = json.loads(response.read())
    assert "over this path's limit" in body["detail"] and body["limit_bytes"] < 16 * 1024**2
    connection.close()


@pytest.mark.django_db
def test_a_multipart_file_to_a_page_that_takes_none_never_reaches_the_temporary_folder(client, settings, tmp_path):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    client.cookies["csrftoken"] = "a" * 32
    big = SimpleUploadedFile("junk.bin", b"\0" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 2 * 1024**2))
    response = client.post("/accounts/login/", {"username": "x", "csrfmiddlewaretoken": "a" * 32, "f": big})
    assert response.status_code == 413
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_a_file_that_outgrows_a_small_path_limit_while_it_streams_is_cut_off(client, settings, tmp_path):
    # Content-Length within the path's limit (the form's room), the file over its file limit.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    client.cookies["csrftoken"] = "a" * 32
    big = SimpleUploadedFile("junk.bin", b"\0" * (512 * 1024))
    response = client.post("/accounts/login/", {"username": "x", "csrfmiddlewaretoken": "a" * 32, "f": big})
    assert response.status_code == 413 and "over the limit of 65536 bytes" in response.json()["detail"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_a_zip_bomb_checkpoint_upload_is_refused_from_its_zip_directory(researcher, tmp_path):
    from tests.models_zoo.test_checkpoints import zip_bomb

    bomb = zip_bomb(tmp_path / "bomb.pt").read_bytes()
    response = _client(researcher).post("/api/leaderboard/submissions",
                                        {"family": "clip4cir", "file": SimpleUploadedFile("bomb.pt", bomb)},
                                        format="multipart")
    assert response.status_code == 400, response.content
    assert "file 'bomb.pt': its members unpack to" in response.json()["detail"]
    assert Submission.objects.count() == 0
