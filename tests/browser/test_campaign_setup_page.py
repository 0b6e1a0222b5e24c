"""Setting up a study without the raw admin, in headless Chromium with a real worker: dataset and split, models
and options with the defaults filled, build with progress, preview a real task (each set's images in one row),
open. Screenshots land in $HPBENCH_VAR_DIR/screens/ for a person to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from annotate.models import Campaign
from tests.annotate.conftest import make_world

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def test_staff_create_build_preview_and_open_a_campaign(browser, live_server, django_user_model,
                                                        celery_worker_process, tmp_path):
    world = make_world(n_queries=4, n_models=3)
    for index, image in enumerate(world.images):  # real files, so the preview shows pictures
        from PIL import Image as PILImage

        PILImage.new("RGB", (60, 80), (40 * (index % 6), 90, 200 - 4 * index)).save(tmp_path / image.file_path)
    world.dataset.image_root = str(tmp_path)
    world.dataset.save(update_fields=["image_root"])
    django_user_model.objects.create_user(username="staff", password="staff-pass-123", is_staff=True)
    screens = Path(os.environ["HPBENCH_VAR_DIR"]) / "screens"
    screens.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{live_server.url}/campaigns/new/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "staff-pass-123")
        page.click("main button[type=submit]")
        page.check(f"input[value='{world.dataset.pk}:val']")
        page.get_by_role("button", name="Next: models and options").click()

        assert page.input_value("#id_num_queries") == "4"  # defaults filled
        assert page.locator("input[name=models]:checked").count() == 3
        page.fill("#id_name", "Dress pilot")
        page.locator("input[name=models]").nth(2).uncheck()
        page.screenshot(path=str(screens / "campaign-setup-form-1440.png"), full_page=True)
        page.get_by_role("button", name="Create the campaign").click()
        page.wait_for_url("**/campaigns/dress-pilot/setup/")
        assert "created as a draft" in page.inner_text(".lb-messages")

        page.get_by_role("button", name="Build comparisons").click()
        page.wait_for_selector("text=Preview as annotator", timeout=60_000)  # the page reloads once built
        campaign = Campaign.objects.get(slug="dress-pilot")
        assert campaign.build_status == "built"
        assert campaign.comparisons.filter(is_gold=False).count() == 4
        assert page.inner_text("[data-state='comparisons']") == str(campaign.comparisons.count())
        page.screenshot(path=str(screens / "campaign-setup-built-1440.png"), full_page=True)

        with context.expect_page() as opened:
            page.get_by_role("link", name="Preview as annotator").click()
        preview = opened.value
        preview.wait_for_selector("#ann-set-left .ann-images img")
        tops = preview.eval_on_selector_all("#ann-set-left .ann-images img",
                                            "els => els.map(e => Math.round(e.getBoundingClientRect().top))")
        assert len(tops) == 5 and len(set(tops)) == 1, tops  # one row, not one column
        preview.screenshot(path=str(screens / "campaign-preview-1440.png"))

        page.get_by_role("button", name="Open the campaign").click()
        page.wait_for_selector("text=is open")
        campaign.refresh_from_db()
        assert campaign.status == "open"
    finally:
        context.close()
    assert not errors, errors
