"""The staff monitoring page in headless Chromium: copy the Prolific URL, exclude an annotator, open the preview."""

from __future__ import annotations

import shutil

import pytest

from annotate.models import Vote
from tests.frontend.monitor_fixtures import voted_campaign

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def test_staff_copy_the_study_url_exclude_an_annotator_and_preview(browser, live_server, tmp_path, django_user_model):
    voted = voted_campaign(tmp_path)
    django_user_model.objects.create_user(username="staff", password="staff-pass-123", is_staff=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    context.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None,
    )
    try:
        page.goto(f"{live_server.url}/campaigns/monitored/monitor/")
        assert "/accounts/login/" in page.url  # anonymous: sent to log in first
        page.fill("#id_username", "staff")
        page.fill("#id_password", "staff-pass-123")
        page.click("main button[type=submit]")
        page.wait_for_selector("#mon-prolific-url")
        assert page.url.endswith("/campaigns/monitored/monitor/")

        page.get_by_role("button", name="Copy the Prolific study URL").click()
        page.wait_for_function("() => document.getElementById('mon-copy-status').textContent === 'Copied.'")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied == page.input_value("#mon-prolific-url")
        assert copied.endswith(
            "/annotate/monitored/?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
        )

        dee = voted.annotators["dee"]
        row = page.locator(f'tr[data-annotator="{dee.pseudonym}"]')
        row.get_by_role("button", name="Exclude").click()
        page.wait_for_selector(".lb-msg-success")
        assert "excluded; their votes are left out" in page.locator(".lb-msg-success").inner_text()
        assert (
            "excluded by staff"
            in page.locator(f'tr[data-annotator="{dee.pseudonym}"] td[data-col="flags"]').inner_text()
        )
        assert page.locator('[data-figure="excluded_votes"]').inner_text() == "3"
        assert set(Vote.objects.filter(annotator=dee).values_list("excluded", flat=True)) == {True}

        with context.expect_page() as opened:
            page.get_by_role("link", name="Preview as annotator").click()
        preview = opened.value
        preview.wait_for_load_state()
        assert "Nothing is leased or recorded" in preview.inner_text("main")
        assert preview.locator(".ann-images img").count() == 2 * voted.built.campaign.set_size
        # The task's images (the voting page's closed zoom dialog holds empty placeholders).
        preview.wait_for_function(
            "() => [...document.querySelectorAll('#ann-task img')].every(i => i.complete && i.naturalWidth > 0)"
        )
    finally:
        context.close()
    assert not errors, errors
