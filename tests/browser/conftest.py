"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright's sync API.

Launched exactly as ../shared/FACTS.md records; ``playwright install`` is never needed. Tests that use
``page`` also get pytest-django's ``live_server`` (and so a transactional database).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

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
