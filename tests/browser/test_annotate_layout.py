"""The voting page's layout in real headless Chromium (issue 23, items 5 to 7).

- No part of a task (sets, images, ratings) is ever under the answer bar, on the second task and with the
  choice-versus-ratings warning shown, at 1440x900, 1280x720 and 390x844, scrolled to the top or the bottom.
- Result images are at least 220 px wide at 1440x900; on a 390 px phone a whole set is in view without
  scrolling sideways.
- The enlarged view shows the reference and the requested change beside the enlarged image.
- "Both sets are irrelevant" alone (I, Enter) is a whole answer, recorded with no winner and no ratings.

Screenshots of the page and of the enlarged view go to ``$HPBENCH_VAR_DIR/screens/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from annotate.models import Assignment, Vote
from tests.browser.factory import build_page_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROLIFIC = "?PROLIFIC_PID=60a1b2c3d4e5f60718293a4d&STUDY_ID=study9&SESSION_ID=sessL"
SIZES = [(1440, 900), (1280, 720), (390, 844)]

# Every box of the task that must stay clear of the answer bar, as [label, rect] in window coordinates.
_TASK_BOXES = """() => {
  const boxes = [];
  const add = (label, el) => {
    if (!el || el.closest('[hidden]')) return;
    const r = el.getBoundingClientRect();
    if (r.width && r.height) boxes.push([label, {top: r.top, bottom: r.bottom, left: r.left, right: r.right}]);
  };
  for (const side of ['left', 'right']) {
    add('set ' + side, document.getElementById('ann-set-' + side));
    document.querySelectorAll('#ann-set-' + side + ' .ann-rating').forEach((el) => add('rating ' + side, el));
    document.querySelectorAll('#ann-set-' + side + ' img').forEach((el, i) => add('image ' + side + i, el));
  }
  add('reference', document.getElementById('ann-ref-img'));
  add('request', document.getElementById('ann-text'));
  const bar = document.querySelector('.ann-actions').getBoundingClientRect();
  return {bar: {top: bar.top, bottom: bar.bottom, left: bar.left, right: bar.right}, boxes};
}"""


def _overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def _under_bar(page) -> list[str]:
    """The task boxes the answer bar covers, scrolled to the top and to the bottom of the page."""
    covered = []
    for scroll in ("0", "document.documentElement.scrollHeight"):
        page.evaluate(f"() => window.scrollTo(0, {scroll})")
        found = page.evaluate(_TASK_BOXES)
        covered += [label for label, box in found["boxes"] if _overlaps(box, found["bar"])]
    page.evaluate("() => window.scrollTo(0, 0)")
    return covered


def _real_size_images(built) -> None:
    """The demo generator's size (384x480), each a colour with its number, so screenshots show what is what."""
    root = Path(built.campaign.dataset.image_root)
    for n, image in enumerate(built.images.values()):
        path = root / image.file_path
        colour = PILImage.open(path).convert("RGB").getpixel((0, 0))
        big = PILImage.new("RGB", (384, 480), colour)
        draw = ImageDraw.Draw(big)
        draw.rectangle((96, 120, 288, 360), outline=(255, 255, 255), width=8)
        draw.text((170, 220), f"{n}", fill=(0, 0, 0))
        big.save(path)


def _wait_for_task(page, done: int) -> None:
    page.wait_for_selector("#ann-task:not([hidden])")
    page.wait_for_function(
        "([n]) => document.getElementById('ann-progress-text').textContent.startsWith(n + ' of')", arg=[done]
    )
    page.wait_for_function("() => document.getElementById('annotate-app').getAttribute('aria-busy') === 'false'")
    page.wait_for_function("() => [...document.querySelectorAll('#ann-task img')].every((i) => i.complete)")


def _screens() -> Path:
    folder = Path(os.environ.get("HPBENCH_VAR_DIR", "var")) / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_no_part_of_a_task_is_under_the_answer_bar(width, height, tmp_path, browser, live_server):
    built = build_page_campaign(image_root=tmp_path / "images", set_size=5, queries=3, quota=3)
    _real_size_images(built)
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
        page.wait_for_selector("#ann-onboarding:not([hidden])")
        page.click("#ann-start")
        _wait_for_task(page, 0)
        for key in ("a", "4", "2", "Enter"):
            page.keyboard.press(key)
        _wait_for_task(page, 1)
        assert _under_bar(page) == [], "after the first task"

        # Choose A but rate B higher: the warning shows, and still covers nothing.
        for key in ("a", "1", "5", "Enter"):
            page.keyboard.press(key)
        page.wait_for_selector("#ann-warning:not([hidden])")
        assert _under_bar(page) == [], "with the choice-versus-ratings warning"

        images = "[...document.querySelectorAll('.ann-images img')].map((i) => i.getBoundingClientRect())"
        widths = page.evaluate(f"() => {images}.map((r) => r.width)")
        assert len(widths) == 10
        if width == 1440:
            assert min(widths) >= 220, f"result images at 1440x900: {widths}"
        if width == 390:
            rights = page.evaluate(f"() => {images}.map((r) => [r.left, r.right])")
            assert all(left >= 0 and right <= width for left, right in rights), f"a set runs off a phone: {rights}"
            scroll_widths = page.evaluate(
                "() => [...document.querySelectorAll('.ann-images')].map((l) => l.scrollWidth - l.clientWidth)"
            )
            assert scroll_widths == [0, 0], "a set's row scrolls sideways"
        if width != 1280:
            page.screenshot(path=str(_screens() / f"annotate-task-{width}x{height}.png"))

        # The enlarged view: the reference and the requested change beside the enlarged image.
        page.click("#ann-set-right-images img >> nth=1")
        page.wait_for_selector("#ann-zoom[open]")
        zoom = page.evaluate("""() => {
          const r = (id) => document.getElementById(id).getBoundingClientRect();
          return {ref: document.getElementById('ann-zoom-ref').src, pageRef: document.getElementById('ann-ref-img').src,
                  text: document.getElementById('ann-zoom-text').textContent,
                  refBox: r('ann-zoom-ref').toJSON(), imgBox: r('ann-zoom-img').toJSON()};
        }""")
        assert zoom["ref"] == zoom["pageRef"]
        assert zoom["text"] == "is red and has long sleeves"
        ref, img = zoom["refBox"], zoom["imgBox"]
        assert ref["width"] > 50 and img["width"] > ref["width"]
        assert not _overlaps(ref, img)
        for box in (ref, img):
            assert box["left"] >= 0 and box["right"] <= width and box["top"] >= 0 and box["bottom"] <= height, box
        if width != 1280:
            page.screenshot(path=str(_screens() / f"annotate-zoom-{width}x{height}.png"))
    finally:
        context.close()


def test_both_irrelevant_alone_is_a_whole_answer(tmp_path, page):
    built = build_page_campaign(image_root=tmp_path / "images", allow_tie=False, ask_ratings=True, quota=2)
    page.goto(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
    page.wait_for_selector("#ann-onboarding:not([hidden])")
    page.click("#ann-start")
    _wait_for_task(page, 0)
    assert page.is_visible("#ann-irrelevant-box")
    page.keyboard.press("i")
    assert "both sets irrelevant" in page.inner_text("#ann-summary").lower()
    page.keyboard.press("Enter")
    _wait_for_task(page, 1)

    vote = Vote.objects.get()
    assert vote.irrelevant is True
    assert vote.choice == Vote.Choice.TIE, "no winner: stored as no preference either way"
    assert (vote.rating_a, vote.rating_b) == (None, None)
    assert vote.assignment.state == Assignment.State.SUBMITTED


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_the_first_screen_shows_examples_duration_contact_and_start_in_view(
    width, height, tmp_path, browser, live_server
):
    from annotate.onboarding import campaign_examples_set

    built = build_page_campaign(image_root=tmp_path / "images", set_size=5, queries=3, quota=20)
    _real_size_images(built)
    campaign = built.campaign
    campaign.contact = "lena.researcher@example.org"
    campaign.consent_text = "Your answers are **anonymous**."
    campaign.save(update_fields=["contact", "consent_text"])
    ids = sorted(built.images)
    campaign_examples_set(campaign=campaign, reference=ids[-1], text="is blue and has long sleeves",
                          good=ids[-3:-1], partial=ids[-5:-3], poor=ids[-7:-5])
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"/annotate/{campaign.slug}/{PROLIFIC}")
        page.wait_for_selector("#ann-onboarding:not([hidden])")
        page.wait_for_function("() => [...document.querySelectorAll('.ann-examples img')].every((i) => i.complete)")
        start = page.eval_on_selector("#ann-start", "el => el.getBoundingClientRect().toJSON()")
        assert start["bottom"] <= height and start["right"] <= width, f"Start is out of view: {start}"
        # 20 votes at the default 12 s each: 4 minutes.
        assert page.inner_text("#ann-duration") == "About 4 minutes."
        assert "lena.researcher@example.org" in page.inner_text("#ann-contact")
        examples = page.evaluate("""() => [...document.querySelectorAll('.ann-examples figure')].map((f) => [
            f.className, [...f.querySelectorAll('img')].map((i) => i.naturalWidth)])""")
        assert [kind for kind, _w in examples] == [
            "ann-ex-ref", "ann-ex-set ann-ex-set-good", "ann-ex-set ann-ex-set-partial", "ann-ex-set ann-ex-set-poor"
        ]
        assert all(widths and all(w == 384 for w in widths) for _k, widths in examples), examples
        assert "Partial match" in page.inner_text(".ann-examples")
        page.screenshot(path=str(_screens() / f"annotate-first-screen-{width}x{height}.png"))
        page.check("#ann-consent")
        page.click("#ann-start")
        _wait_for_task(page, 0)
    finally:
        context.close()


def test_the_staff_preview_is_the_voting_page_and_records_nothing(tmp_path, page, django_user_model):
    built = build_page_campaign(image_root=tmp_path / "images", set_size=5)
    django_user_model.objects.create_user(username="staff", password="staff-pass-123", is_staff=True)
    page.goto("/accounts/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pass-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    api_calls: list[str] = []
    page.on("request", lambda request: api_calls.append(request.url) if "/api/" in request.url else None)
    comparison = built.comparisons[1]
    page.goto(f"/campaigns/{built.campaign.slug}/preview/?comparison={comparison.pk}")
    page.wait_for_selector("#ann-task:not([hidden])")
    assert page.inner_text("#ann-text") == comparison.text
    shown = page.evaluate("() => [...document.querySelectorAll('#ann-set-left-images img')].map((i) => i.src)")
    assert [src.rsplit("/", 1)[1] for src in shown] == [str(i) for i in comparison.set_a_images]
    for key in ("a", "4", "2", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function("() => document.getElementById('ann-summary').textContent.startsWith('Still needed')")
    assert page.inner_text("#ann-text") == comparison.text, "the same task again"
    assert not Vote.objects.exists() and not Assignment.objects.exists()
    assert api_calls == []
