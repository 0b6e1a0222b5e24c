"""Every main page works under the Content-Security-Policy: no violation, no JavaScript error, in real Chromium.

Each page is opened as the role that sees it (anonymous, crowd annotator, researcher, staff); the test listens
to the browser's ``securitypolicyviolation`` events and its "Refused to …" console messages, and fails on any.
A ``javascript:`` link stored before links were checked does nothing when clicked.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store
from hpbench.leaderboard.services.submissions import submission_create
from tests.browser.factory import build_page_campaign

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]

PROLIFIC = "?PROLIFIC_PID=60a1b2c3d4e5f60718293a4c&STUDY_ID=study9&SESSION_ID=sessB"
# Registered in every page before its own scripts run (Playwright injects it outside the page's CSP).
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile}:${e.lineNumber}`);
});
"""


@dataclass
class Visit:
    path: str
    status: int
    csp_header: str
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Site:
    benchmark: str
    query_id: int
    campaign: str
    submission_id: int
    bad_model: str


@pytest.fixture
def site(tmp_path, researcher) -> Site:
    built = build_page_campaign(image_root=tmp_path / "images")
    images = list(built.images)
    pairs = [PairSpec(reference_id=images[0], text=f"t{n}", set1=tuple(images[1:3]), set2=tuple(images[3:5]),
                      preference=1 + n % 2) for n in range(6)]
    benchmark = benchmark_store(name="csp-bench", source="imported", dataset=built.campaign.dataset,
                                pairs=pairs).benchmark
    # A link stored before links were checked (written past the validators, as an old row would be).
    bad = ModelEntry.objects.create(name="old-model", family="demo", link="javascript:window.__xss=1")
    for model in (*built.models, bad):
        score = ModelScore.objects.create(model=model, benchmark=benchmark)
        model_score_store(score_id=score.pk, set1=np.linspace(0, 1, 6), set2=np.full(6, 0.5))
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
    submission = submission_create(owner=researcher, family="clip4cir", file=upload, link="https://example.org/paper")
    return Site(benchmark=benchmark.name, query_id=built.comparisons[0].query_id, campaign=built.campaign.slug,
                submission_id=submission.pk, bad_model=bad.name)


@pytest.fixture
def open_as(browser, live_server) -> Iterator:
    """``open_as(user_or_None)`` → a function visiting a path in a browser context logged in as that user."""
    contexts = []

    def make(user):
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(10_000)
        context.add_init_script(LISTEN)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                                  "url": live_server.url}])
        contexts.append(context)

        def visit(path: str, *, settle: str = "", click: str = "") -> Visit:
            page = context.new_page()
            console: list[str] = []
            errors: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            response = page.goto(path)
            page.wait_for_load_state("networkidle")
            if click:
                page.click(click)
            if settle:
                page.wait_for_selector(settle)
            violations = page.evaluate("window.__csp") + [
                text for text in console if "Content Security Policy" in text or text.startswith("Refused to")
            ]
            result = Visit(path=path, status=response.status, csp_header=response.headers.get(
                "content-security-policy", ""), violations=violations, errors=errors)
            page.close()
            return result

        return visit

    yield make
    for context in contexts:
        context.close()


def _check(visits: list[Visit]) -> None:
    problems = [
        f"{v.path}: status {v.status}, violations {v.violations}, errors {v.errors}, CSP {v.csp_header!r}"
        for v in visits
        if v.status != 200 or v.violations or v.errors or "script-src 'self'" not in v.csp_header
    ]
    assert not problems, "\n".join(problems)


def test_every_main_page_works_under_the_content_security_policy(site, open_as, researcher, staff_user):
    anonymous = open_as(None)
    visits = [
        anonymous("/"),
        anonymous("/leaderboard/"),
        anonymous(f"/leaderboard/{site.benchmark}/"),
        anonymous("/queries/"),
        anonymous(f"/queries/{site.query_id}/"),
        # Past the campaign's first screen (its Start button), to the first task.
        anonymous(f"/annotate/{site.campaign}/{PROLIFIC}", click="#ann-start", settle="#ann-task:not([hidden]) img"),
        anonymous("/accounts/login/"),
        anonymous("/admin/login/"),
        anonymous("/api/docs/", settle=".swagger-ui .info"),
        anonymous("/submit/"),
        anonymous("/accounts/signup/"),
    ]
    as_researcher = open_as(researcher)
    visits += [as_researcher("/submissions/"), as_researcher(f"/submissions/{site.submission_id}/"),
               as_researcher(f"/submissions/{site.submission_id}/log/"), as_researcher("/account/token/")]
    as_staff = open_as(staff_user)
    visits += [
        as_staff("/exports/"),
        as_staff("/admin/"),
        as_staff("/admin/catalog/modelentry/"),
        as_staff("/admin/catalog/image/"),
        as_staff("/admin/catalog/basemodel/add/"),
        as_staff("/admin/leaderboard/submission/"),
        as_staff("/admin/auth/user/"),
        as_staff("/admin/annotate/campaign/"),
        as_staff(f"/campaigns/{site.campaign}/monitor/"),
        as_staff(f"/campaigns/{site.campaign}/preview/"),
    ]
    _check(visits)


def test_a_stored_javascript_link_does_nothing_when_clicked(site, browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.goto(f"/leaderboard/{site.benchmark}/")
    page.get_by_role("link", name=site.bad_model).click()  # the row links to the model's page ...
    page.wait_for_url(f"**/models/{site.bad_model}/")
    page.locator("dl.lb-model-facts a").filter(has_text="javascript:").first.click()  # ... which shows its link
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert any("script-src" in v for v in page.evaluate("window.__csp")), "the browser reported the blocked link"
    context.close()
