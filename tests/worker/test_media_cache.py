"""A worker's local copies of stored media: downloaded once, refreshed when the stored file changes, with the
stored modification time (so checkpoint fingerprints agree across workers), folders with their companions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpbench import media
from models_zoo.checkpoints import checkpoint_fingerprint
from worker.media_cache import local_file, local_folder


@pytest.fixture
def cache(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.HPBENCH_WORKER_CACHE = str(tmp_path / "cache")
    return Path(settings.HPBENCH_WORKER_CACHE)


def test_on_a_folder_storage_the_stored_file_is_used_in_place(cache):
    media.save_bytes("checkpoints/m/model.safetensors", b"weights")
    stored = Path(media.storage().path("checkpoints/m/model.safetensors"))
    assert local_file("checkpoints/m/model.safetensors") == stored
    assert local_folder("checkpoints/m") == Path(media.storage().path("checkpoints/m"))
    assert not cache.exists()


def test_a_stored_file_is_downloaded_once_and_again_when_it_is_replaced(s3_media, cache):
    media.save_bytes("embeddings/model-1-ab/dataset-1/images.npz", b"v1")
    first = local_file("embeddings/model-1-ab/dataset-1/images.npz")
    assert first.read_bytes() == b"v1" and cache in first.parents
    stamp = first.stat().st_mtime_ns
    assert local_file("embeddings/model-1-ab/dataset-1/images.npz") == first
    assert first.stat().st_mtime_ns == stamp  # not downloaded again
    assert abs(first.stat().st_mtime - media.storage().get_modified_time(
        "embeddings/model-1-ab/dataset-1/images.npz").timestamp()) < 1e-3

    media.save_bytes("embeddings/model-1-ab/dataset-1/images.npz", b"version 2")
    second = local_file("embeddings/model-1-ab/dataset-1/images.npz")
    assert second != first and second.read_bytes() == b"version 2"
    assert not [p for p in cache.rglob("*") if p.name.endswith(".part")]  # no half-downloaded files left


def test_a_stored_folder_comes_with_its_companion_files_and_the_same_fingerprint_on_two_workers(
    s3_media, settings, tmp_path
):
    media.save_bytes("checkpoints/2026/11/sub-1/clip4cir.safetensors", b"combiner")
    media.save_bytes("checkpoints/2026/11/sub-1/clip4cir.json", b"{}")
    media.save_bytes("checkpoints/2026/11/sub-1/clip/model.safetensors", b"clip")
    fingerprints = []
    for worker in ("a", "b"):
        settings.HPBENCH_WORKER_CACHE = str(tmp_path / f"cache-{worker}")
        folder = local_folder("checkpoints/2026/11/sub-1")
        assert folder.name == "sub-1"
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
            "clip/model.safetensors", "clip4cir.json", "clip4cir.safetensors"]
        assert (folder / "clip" / "model.safetensors").read_bytes() == b"clip"
        fingerprints.append(checkpoint_fingerprint(folder / "clip4cir.safetensors"))
        os.utime(folder / "clip4cir.json")  # a local touch does not make the next call download again
        assert local_folder("checkpoints/2026/11/sub-1") == folder
    assert fingerprints[0] == fingerprints[1]


def test_a_missing_stored_file_or_folder_is_a_media_error_naming_it(s3_media, cache):
    with pytest.raises(media.MediaError, match="checkpoints/none.pt"):
        local_file("checkpoints/none.pt")
    with pytest.raises(media.MediaError, match="checkpoints/nothing"):
        local_folder("checkpoints/nothing")
