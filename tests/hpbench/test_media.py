"""Media through the storage API: whole-file replacement, legacy absolute paths, folders deleted, on a folder
and on an S3 bucket (moto's server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpbench import media


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, settings, tmp_path) -> str:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    if request.param == "s3":
        request.getfixturevalue("s3_media")
    return request.param


def test_save_bytes_replaces_a_file_under_the_same_name(backend):
    assert media.save_bytes("runs/run-1.npz", b"first") == "runs/run-1.npz"
    assert media.save_bytes("runs/run-1.npz", b"second, longer") == "runs/run-1.npz"
    assert media.read_bytes("runs/run-1.npz") == b"second, longer"
    assert media.walk("runs") == [("runs/run-1.npz", len(b"second, longer"))]  # no temporary or renamed copy


def test_a_missing_file_is_a_media_error_naming_it(backend):
    with pytest.raises(media.MediaError, match="runs/run-404.npz"):
        media.read_bytes("runs/run-404.npz")


def test_delete_tree_deletes_every_file_below_a_folder_and_counts_them(backend):
    media.save_bytes("embeddings/model-1-ab/dataset-1/images.npz", b"x" * 10)
    media.save_bytes("embeddings/model-1-ab/dataset-2/queries.npz", b"y" * 5)
    media.save_bytes("embeddings/model-2-cd/dataset-1/images.npz", b"z")
    assert media.delete_tree("embeddings/model-1-ab") == (2, 15)
    assert media.walk("embeddings") == [("embeddings/model-2-cd/dataset-1/images.npz", 1)]
    if backend == "filesystem":
        assert not (Path(media.storage().path("embeddings")) / "model-1-ab").exists()


def test_save_file_stores_a_local_file(backend, tmp_path):
    local = tmp_path / "export.csv"
    local.write_text("a,b\n1,2\n")
    media.save_file("exports/job-1.csv", local)
    assert media.read_bytes("exports/job-1.csv") == b"a,b\n1,2\n"


def test_rows_written_before_the_storage_api_still_read_by_absolute_path(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    old = tmp_path / "elsewhere" / "run-7.npz"
    old.parent.mkdir()
    old.write_bytes(b"legacy")
    assert media.read_bytes(str(old)) == b"legacy"
    with pytest.raises(media.MediaError, match="no such file"):
        media.read_bytes(str(tmp_path / "gone.npz"))
