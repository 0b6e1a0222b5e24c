"""``import_hpfiq --download``: the released file fetched over HTTP and checked by SHA-256 before importing.

A local HTTP server (127.0.0.1, a thread) serves the copy of the release in ../shared; no test reaches the
network.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from hpbench.leaderboard.hpfiq_download import HPFIQ_SHA256, HPFIQ_URL, HpfiqDownloadError, hpfiq_download
from hpbench.leaderboard.models import BenchmarkPair, PreferenceBenchmark


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def serve():
    """``serve(folder)`` -> the base URL of an HTTP server on 127.0.0.1 serving that folder."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _download(*args) -> str:
    out = io.StringIO()
    call_command("import_hpfiq", "--download", "--dataset", "fiq", *args, stdout=out)
    return out.getvalue()


def test_the_pinned_hash_is_the_releases(hpfiq_path):
    assert hashlib.sha256(hpfiq_path.read_bytes()).hexdigest() == HPFIQ_SHA256
    assert HPFIQ_URL.endswith("/jackwaky/QuRe/main/HP_FashionIQ/hpfiq.json")


@pytest.mark.django_db
def test_it_downloads_checks_and_imports_the_release(fiq_with_hpfiq_images, hpfiq_path, serve):
    base = serve(hpfiq_path.parent)
    summary = json.loads(_download("--url", f"{base}/hpfiq.json", "--json"))
    assert summary["pairs"] == summary["questions"] == 3050 and summary["created"] is True
    assert BenchmarkPair.objects.filter(benchmark__name="hp-fashioniq").count() == 3050
    text = _download("--url", f"{base}/hpfiq.json")
    assert "SHA-256 checked" in text and "unchanged (same content)" in text


@pytest.mark.django_db
def test_a_file_with_another_hash_is_refused_and_nothing_is_imported(
    fiq_with_hpfiq_images, hpfiq_path, serve, tmp_path
):
    changed = json.loads(hpfiq_path.read_text())
    changed["user_1"]["question_set_1"]["preferred set"][0] = "1"
    (tmp_path / "hpfiq.json").write_text(json.dumps(changed))
    base = serve(tmp_path)
    with pytest.raises(CommandError, match=r"SHA-256 is [0-9a-f]{64} .*expected 4806fe16.*nothing imported"):
        _download("--url", f"{base}/hpfiq.json")
    assert not PreferenceBenchmark.objects.exists()
    # The real release with a wrong expected hash is refused too.
    base = serve(hpfiq_path.parent)
    with pytest.raises(CommandError, match="expected 0000"):
        _download("--url", f"{base}/hpfiq.json", "--sha256", "0" * 64)
    assert not PreferenceBenchmark.objects.exists()


@pytest.mark.django_db
def test_download_errors_are_clear(fiq_dataset, serve, tmp_path):
    base = serve(tmp_path)
    with pytest.raises(CommandError, match=r"could not download http://127\.0\.0\.1:\d+/missing\.json: .*404"):
        _download("--url", f"{base}/missing.json")
    with pytest.raises(CommandError, match="give an http"):
        _download("--url", "file:///etc/passwd")
    with pytest.raises(CommandError, match="not both"):
        call_command("import_hpfiq", "x.json", "--download", "--dataset", "fiq")
    with pytest.raises(CommandError, match="or --download"):
        call_command("import_hpfiq", "--dataset", "fiq")


def test_no_temporary_file_is_left_after_a_refusal(hpfiq_path, serve, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(hpfiq_path, folder / "hpfiq.json")
    base = serve(folder)
    with pytest.raises(HpfiqDownloadError):
        hpfiq_download(url=f"{base}/hpfiq.json", sha256="f" * 64)
    assert list(scratch.iterdir()) == []
    path = hpfiq_download(url=f"{base}/hpfiq.json")
    assert path.parent == scratch and path.read_bytes() == hpfiq_path.read_bytes()
    path.unlink()
