"""The voting page in real headless Chromium: a Prolific annotator votes by keyboard only.

Each test builds its campaign from ORM rows, opens ``/annotate/<slug>/?PROLIFIC_PID=…`` on the live
server and drives the page with key presses; the votes are then checked in the database, mapped back
through each lease's stored left/right placement.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotate.models import Annotator, Assignment, CampaignImage, Vote
from tests.browser.factory import SECRET_MODEL_DESCRIPTION, SECRET_MODEL_NAMES, build_page_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROLIFIC = "?PROLIFIC_PID=60a1b2c3d4e5f60718293a4b&STUDY_ID=study9&SESSION_ID=sessA"
# Set to a folder to keep screenshots of the page mid-task and of the end screen.
SCREENSHOT_DIR = os.environ.get("HPBENCH_PAGE_SCREENSHOTS", "")


@dataclass
class Recorder:
    """Every response the page received from the server (for the anonymity check and the leases)."""

    responses: list[tuple[str, int, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfinished", self._finished)

    def _finished(self, request) -> None:
        response = request.response()
        if response is None:
            return
        try:
            body = response.text() if "image" not in (response.headers.get("content-type") or "") else ""
        except Exception:  # noqa: BLE001 - a body the browser did not keep (redirects)
            body = ""
        self.responses.append((request.url, response.status, body))

    def next_bodies(self) -> list[dict]:
        return [json.loads(body) for url, status, body in self.responses if url.endswith("/next") and status == 200]


def _enter(page, slug: str) -> None:
    """Open the campaign's crowd link and pass its first screen (instructions, shown once per annotator)."""
    page.goto(f"/annotate/{slug}/{PROLIFIC}")
    page.wait_for_selector("#ann-onboarding:not([hidden])")
    page.click("#ann-start")


def _wait_for_task(page, done: int, quota: int) -> None:
    page.wait_for_selector("#ann-task:not([hidden])")
    page.wait_for_function(
        "([text]) => document.getElementById('ann-progress-text').textContent === text", arg=[f"{done} of {quota}"]
    )
    page.wait_for_function("() => document.getElementById('annotate-app').getAttribute('aria-busy') === 'false'")


def _image_ids(urls: list[str]) -> list[int]:
    """The catalogue ids behind annotators' opaque image URLs (/images/a/<campaign token>)."""
    tokens = [re.search(r"/images/a/([-\w]+)", url).group(1) for url in urls]
    ids = dict(CampaignImage.objects.filter(token__in=tokens).values_list("token", "image_id"))
    return [ids[token] for token in tokens]


def _shown_set(page, side: str) -> list[int]:
    return _image_ids(page.eval_on_selector_all(f"#ann-set-{side}-images img", "imgs => imgs.map(i => i.src)"))


def _current_lease(recorder: Recorder, page) -> str:
    """The lease of the task on screen: the latest next-task answer whose task shows these images."""
    sources = page.eval_on_selector_all("#ann-set-left-images img", "imgs => imgs.map(i => i.src)")
    left = [re.search(r"/images/a/[-\w]+", src).group() for src in sources]
    for body in reversed(recorder.next_bodies()):
        task = body.get("task")
        if task and [i["url"] for i in task["sets"]["left"]] == left:
            return task["lease"]
    raise AssertionError("no next-task response matches the task on screen")


def _screenshot(page, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"page_{name}.png"))


@pytest.mark.parametrize(
    "browser_context_args, label",
    [
        ({"viewport": {"width": 1280, "height": 800}}, "desktop"),
        ({"viewport": {"width": 390, "height": 844}}, "narrow"),
    ],
)
def test_a_prolific_annotator_votes_by_keyboard_until_the_completion_code(page, live_server, tmp_path, label):
    built = build_page_campaign(image_root=tmp_path / "images", queries=4, quota=3, set_size=3)
    recorder = Recorder()
    recorder.attach(page)
    _enter(page, built.campaign.slug)

    # Task 1: choose A, rate A 4 and B 2 (the number keys move on from A to B), Enter twice quickly.
    _wait_for_task(page, 0, 3)
    lease_1 = _current_lease(recorder, page)
    assert _shown_set(page, "left") != _shown_set(page, "right")
    preview = recorder.next_bodies()[-1]["next"]
    assert preview, "the next task is announced so that its images can be preloaded"
    page.keyboard.press("a")
    assert page.get_attribute("#ann-choose-left", "aria-pressed") == "true"
    assert "Your choice" in page.inner_text("#ann-set-left-badge")
    page.keyboard.press("4")
    page.keyboard.press("2")
    _screenshot(page, f"{label}_mid")
    votes_before = sum(1 for url in recorder.requests if url.endswith("/votes"))
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")

    # Task 2: choose B with the arrow key; Enter before rating is refused with a visible message.
    _wait_for_task(page, 1, 3)
    lease_2 = _current_lease(recorder, page)
    assert lease_2 != lease_1
    preloaded = [
        u
        for u in recorder.requests[
            : recorder.requests.index(next(u for u in recorder.requests if u.endswith("/votes")))
        ]
        if "/images/" in u
    ]
    assert all(any(u.endswith(path) for u in preloaded) for path in _image_paths(preview)), (
        "the second task's images were requested before the first vote was sent"
    )
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ann-error:not([hidden])")
    assert "rate A" in page.inner_text("#ann-error")
    page.keyboard.press("1")
    page.keyboard.press("5")
    page.keyboard.press("i")
    assert page.is_checked("#ann-irrelevant")
    page.keyboard.press("Enter")

    # Task 3: tie; rate A 2 and B 3, then R back to A and correct it to 5.
    _wait_for_task(page, 2, 3)
    lease_3 = _current_lease(recorder, page)
    page.keyboard.press("t")
    for key in ("2", "3", "r", "5"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")

    page.wait_for_selector("#ann-end:not([hidden])")
    assert page.inner_text("#ann-end-code") == "HPB-7Q2X-DONE"
    assert page.inner_text("#ann-progress-text") == "3 of 3"
    _screenshot(page, f"{label}_end")

    votes_sent = [url for url in recorder.requests if url.endswith("/votes")]
    assert len(votes_sent) - votes_before >= 3
    annotator = Annotator.objects.get()
    assert annotator.source == Annotator.Source.PROLIFIC
    assert Vote.objects.filter(annotator=annotator).count() == 3, "the double Enter recorded one vote"
    expected = {
        lease_1: ("left", 4, 2, False),
        lease_2: ("right", 1, 5, True),
        lease_3: ("tie", 5, 3, False),
    }
    for lease, (side, rating_left, rating_right, irrelevant) in expected.items():
        assignment = Assignment.objects.select_related("vote", "comparison").get(lease=lease)
        vote = assignment.vote
        comparison = assignment.comparison
        if side == "tie":
            assert vote.choice == "tie"
        else:
            chose_a = (side == "left") == assignment.left_is_a
            assert vote.choice == ("a" if chose_a else "b")
        rating_a, rating_b = (rating_left, rating_right) if assignment.left_is_a else (rating_right, rating_left)
        assert (vote.rating_a, vote.rating_b) == (rating_a, rating_b)
        assert vote.irrelevant is irrelevant
        assert vote.time_ms is not None and vote.time_ms > 0
        uuid.UUID(vote.idempotency_key)
        assert assignment.state == Assignment.State.SUBMITTED
        # What the page showed on the left is the stored set the placement says.
        shown_left = next(
            _image_ids([i["url"] for i in b["task"]["sets"]["left"]])
            for b in recorder.next_bodies()
            if b.get("task") and b["task"]["lease"] == lease
        )
        assert shown_left == (comparison.set_a_images if assignment.left_is_a else comparison.set_b_images)


def _image_paths(preview) -> list[str]:
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str) and value.startswith("/images/"):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(preview)
    assert found, f"the preview names image urls: {preview!r}"
    return found


def test_no_model_name_or_id_reaches_the_page_or_its_api_responses(page, live_server, tmp_path):
    built = build_page_campaign(image_root=tmp_path / "images", queries=3, quota=2, set_size=2)
    recorder = Recorder()
    recorder.attach(page)
    _enter(page, built.campaign.slug)
    for done in range(2):
        _wait_for_task(page, done, 2)
        for key in ("b", "3", "4", "Enter"):
            page.keyboard.press(key)
    page.wait_for_selector("#ann-end:not([hidden])")

    html = page.content()
    bodies = [body for _url, _status, body in recorder.responses]
    api = [(url, body) for url, _status, body in recorder.responses if "/api/" in url]
    assert len([url for url, _ in api if url.endswith("/next")]) >= 3
    assert len([url for url, _ in api if url.endswith("/votes")]) == 2
    secrets = (*SECRET_MODEL_NAMES, SECRET_MODEL_DESCRIPTION, built.campaign.name)
    for text in (html, *bodies):
        for secret in secrets:
            assert secret not in text
    for url, body in api:
        payload = json.loads(body)
        keys = _all_keys(payload)
        assert not {k for k in keys if "model" in k.lower() or "gold" in k.lower()}, (url, keys)
        for model in built.models:
            assert f"/models/{model.pk}" not in body


def _all_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _all_keys(v)}
    return set()


def test_an_expired_lease_is_explained_and_replaced_by_a_fresh_task(page, live_server, tmp_path):
    built = build_page_campaign(image_root=tmp_path / "images", queries=4, quota=2, set_size=2)
    recorder = Recorder()
    recorder.attach(page)
    _enter(page, built.campaign.slug)
    _wait_for_task(page, 0, 2)
    stale = _current_lease(recorder, page)
    Assignment.objects.filter(lease=stale).update(expires_at=timezone.now() - timedelta(seconds=1))

    for key in ("a", "2", "2", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function("() => /expired/.test(document.getElementById('ann-error').textContent)")
    _wait_for_task(page, 0, 2)
    fresh = _current_lease(recorder, page)
    assert fresh != stale
    assert not Vote.objects.exists()

    for key in ("b", "1", "1", "Enter"):
        page.keyboard.press(key)
    _wait_for_task(page, 1, 2)
    assert page.is_hidden("#ann-error"), "the error goes away with the next answer"
    assert Vote.objects.get().assignment.lease == uuid.UUID(fresh)


def test_the_end_screen_follows_the_completion_url(page, live_server, tmp_path):
    built = build_page_campaign(
        image_root=tmp_path / "images",
        queries=2,
        quota=1,
        set_size=2,
        allow_tie=False,
        ask_ratings=False,
        ask_irrelevant=False,
        completion_code="",
        completion_url=f"{live_server.url}/healthz?finished=1",
    )
    _enter(page, built.campaign.slug)
    _wait_for_task(page, 0, 1)
    assert page.is_hidden("#ann-choose-tie")
    assert page.is_hidden("#ann-irrelevant-box")
    page.keyboard.press("t")  # no tie in this campaign: ignored
    assert page.get_attribute("#ann-choose-tie", "aria-pressed") == "false"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ann-end:not([hidden])")
    assert page.is_visible("#ann-end-redirect")
    page.wait_for_url(f"{live_server.url}/healthz?finished=1")
    assert Vote.objects.get().choice in ("a", "b")
    assert built.campaign.pk
