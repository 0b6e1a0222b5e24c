"""Kept database connections (DB_CONN_MAX_AGE > 0) that PostgreSQL dropped while idle never fail a request.

gunicorn serves the project on the test database; between requests the test terminates the web process's
connections (``pg_terminate_backend``), as a database restart, a failover or a proxy's idle timeout would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web(tmp_path) -> Iterator[tuple[str, str]]:
    """(base URL, application_name of its database connections) of a gunicorn with one kept connection."""
    s = connection.settings_dict
    name = f"hpbench-web-{uuid.uuid4().hex[:8]}"
    url = (f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
           f"?application_name={name}")
    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hpbench.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "1"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url, "DB_CONN_MAX_AGE": "600"}, stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/static/frontend/site.css", timeout=5).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not serve within 60 s"
                time.sleep(0.3)
        yield base, name
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _terminate(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def test_a_kept_connection_terminated_between_requests_is_replaced_not_a_500(web):
    base, name = web
    terminated = 0
    for _ in range(5):
        assert _status(f"{base}/") == 200  # the home page reads the datasets
        time.sleep(0.2)  # the connection is back in the idle state, kept for the next request
        terminated += _terminate(name)
        time.sleep(0.2)
        assert _status(f"{base}/") == 200
    assert terminated >= 5  # each round did drop the web process's kept connection


@pytest.mark.parametrize(
    ("path", "content_type"), [("/api/datasets/", "application/json"), ("/queries/", "text/plain")]
)
def test_a_request_whose_connection_breaks_mid_request_gets_a_503_not_a_500(client, monkeypatch, path, content_type):
    from django.db import OperationalError
    from django.db.backends.utils import CursorWrapper

    def connection_lost(self, sql, params=None):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(CursorWrapper, "execute", connection_lost)
    client.raise_request_exception = False
    answer = client.get(path)
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1" and answer["Content-Type"].startswith(content_type)
