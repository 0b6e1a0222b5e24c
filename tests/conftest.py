"""Shared fixtures: users with different rights, and a real Celery worker process."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _live_server_serves_the_project_application() -> Iterator[None]:
    """The live server (browser tests) serves ``hpbench.wsgi``'s application, as gunicorn does, so the
    annotators' next-task and vote requests go through the short middleware stack there too."""
    import django.test.testcases as testcases

    from hpbench.handlers import Application

    plain = testcases.WSGIHandler
    testcases.WSGIHandler = Application  # what LiveServerThread.run instantiates
    try:
        yield
    finally:
        testcases.WSGIHandler = plain


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A real ``celery worker`` process consuming both queues on the test database.

    Tests that use it must also use ``transactional_db`` so their rows are committed and visible
    to the worker. Yields the worker's node name.
    """
    with worker_process(django_db_blocker) as node:
        yield node


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def worker_process(
    django_db_blocker, *, env: dict[str, str] | None = None, name: str = "worker", queues: str = "default,gpu"
) -> Iterator[str]:
    """Start a ``celery worker`` process on the test database, consuming ``queues``, with ``env`` added to its
    environment (another machine's settings: its own media folder, a storage backend); yields its node name
    once it answers."""
    from django.db import connection

    from hpbench.celery import app

    with django_db_blocker.unblock():
        settings = connection.settings_dict
    database_url = (
        f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    node = f"test-{uuid.uuid4().hex[:8]}@localhost"
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **(env or {})}
    log_path = Path(os.environ["HPBENCH_VAR_DIR"]) / f"{name}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hpbench.celery", "worker", "-Q", queues, "-P", "solo",
         "-n", node, "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()}")
            replies = app.control.ping(destination=[node], timeout=0.5) or []
            if replies:
                break
        else:
            raise RuntimeError(f"celery worker did not answer within 60 s:\n{log_path.read_text()}")
        yield node
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto's server mode) on 127.0.0.1; yields its URL."""
    port = _free_port()
    log_path = Path(os.environ["HPBENCH_VAR_DIR"]) / "moto.log"
    log = log_path.open("w")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited early:\n{log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not listen within 60 s:\n{log_path.read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def s3_env(s3_endpoint) -> dict[str, str]:
    """The environment of a machine whose media is a fresh bucket on :func:`s3_endpoint` (bucket created)."""
    import boto3

    bucket = f"hpbench-{uuid.uuid4().hex[:12]}"
    env = {"HPBENCH_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": s3_endpoint,
           "AWS_S3_REGION_NAME": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return env


@pytest.fixture
def s3_media(s3_env, settings) -> dict[str, str]:
    """This process's media storage is the bucket of :func:`s3_env` for the test; returns that environment."""
    from hpbench.storage_config import storages_from_env

    settings.STORAGES = storages_from_env(s3_env)
    return s3_env


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="staff", password="staff-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def researcher(django_user_model):
    return django_user_model.objects.create_user(username="researcher", password="researcher-pass-123")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user(username="outsider", password="outsider-pass-123")


# --- Headless Chromium (Debian's chromium package) driven by Playwright's sync API ----------------------
# Launched exactly as ../shared/FACTS.md records; `playwright install` is never needed. One browser per session:
# Playwright's sync API cannot be started twice in one process.

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = shutil.which("chromium")
    if not executable:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_context_args() -> dict:
    return {"viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def page(browser, live_server, browser_context_args) -> Iterator:
    """A fresh page (own cookies) on the live server; fails the test on any uncaught JavaScript error."""
    context = browser.new_context(base_url=live_server.url, **browser_context_args)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
