"""Every page fits a 390 px wide phone screen: no page is wider than the viewport (real headless Chromium).

Set ``HPBENCH_PAGE_SCREENSHOTS`` to a folder to keep a screenshot of each page at 1440x900 and 390x844.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hpbench.catalog.models import Dataset
from tests.frontend.monitor_fixtures import voted_campaign

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]

SCREENSHOT_DIR = os.environ.get("HPBENCH_PAGE_SCREENSHOTS", "")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
PROLIFIC = "?PROLIFIC_PID=60a1b2c3d4e5f60718293a4c&STUDY_ID=study9&SESSION_ID=sessB"


@pytest.fixture
def world(tmp_path, django_user_model):
    from tests.leaderboard.test_browser import _fill

    voted = voted_campaign(tmp_path / "campaign")
    fiq = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path / "fiq"))
    _fill(fiq)
    django_user_model.objects.create_user(username="staff", password="staff-pass-123", is_staff=True)
    django_user_model.objects.create_user(username="researcher", password="researcher-pass-123")
    return voted


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _pages(world) -> list[tuple[str, str | None, str]]:
    """(name, who is logged in, path)."""
    query = world.built.comparisons[0].query
    slug, first = world.built.campaign.slug, world.built.comparisons[0].pk
    return [
        ("home", None, "/"),
        ("login", None, "/accounts/login/"),
        ("leaderboard-index", None, "/leaderboard/"),
        ("leaderboard-board", None, "/leaderboard/demo-campaign/"),
        ("queries", None, "/queries/"),
        ("query-detail", None, f"/queries/{query.pk}/"),
        ("annotate", None, f"/annotate/{slug}/{PROLIFIC}"),
        ("submissions", "researcher", "/submissions/"),
        ("submit", None, "/submit/"),
        ("model-page", None, "/models/qure/"),
        ("exports", "staff", "/exports/"),
        ("monitor", "staff", f"/campaigns/{slug}/monitor/"),
        ("preview", "staff", f"/campaigns/{slug}/preview/?comparison={first}"),
        ("campaign-new", "staff", "/campaigns/new/"),
        ("campaign-new-options", "staff", f"/campaigns/new/?dataset={world.built.campaign.dataset_id}&split=val"),
        ("campaign-setup", "staff", f"/campaigns/{slug}/setup/"),
        ("dataset-import", "staff", "/datasets/import/"),
    ]


def _width(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def test_no_page_is_wider_than_a_390_px_screen(world, browser, live_server, settings):
    settings.HPBENCH_TRY_CAMPAIGN = world.built.campaign.slug  # the home page shows its "try it" card
    overflowing = {}
    for viewport in (PHONE, DESKTOP) if SCREENSHOT_DIR else (PHONE,):
        contexts = {}
        try:
            for name, who, path in _pages(world):
                if who not in contexts:
                    contexts[who] = browser.new_context(viewport=viewport)
                    if who:
                        _log_in(contexts[who].new_page(), live_server.url, who)
                page = contexts[who].new_page()
                if viewport is not PHONE:  # another participant: the first screen is shown once per annotator
                    path = path.replace("PROLIFIC_PID=60a1b2c3", "PROLIFIC_PID=70a1b2c3").replace("sessB", "sessD")
                response = page.goto(f"{live_server.url}{path}")
                assert response.status == 200, f"{name}: {path} answered {response.status}"
                if name == "annotate":  # past the first screen (instructions, shown once per annotator), to the task
                    page.wait_for_selector("#ann-onboarding:not([hidden]), #ann-task:not([hidden])")
                    if page.is_visible("#ann-onboarding"):
                        page.click("#ann-start")
                    page.wait_for_selector("#ann-task:not([hidden])")
                page.wait_for_load_state("networkidle")
                width = _width(page)
                if viewport is PHONE and width > PHONE["width"]:
                    overflowing[name] = width
                if SCREENSHOT_DIR:
                    Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=f"{SCREENSHOT_DIR}/{name}-{viewport['width']}.png", full_page=True)
                page.close()
        finally:
            for context in contexts.values():
                context.close()
    assert not overflowing, f"pages wider than 390 px (scrollWidth): {overflowing}"
