"""The leaderboard page in headless Chromium (Debian's chromium, Playwright's sync API)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hpbench.catalog.models import ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def _fill(fiq_dataset) -> None:
    from tests.leaderboard.conftest import make_images

    ids = list(make_images(fiq_dataset, {f"i{n}": "shirt" for n in range(10)}).values())
    rng = np.random.default_rng(1)
    pairs = []
    for n in range(200):
        choices = rng.choice([1, 2], size=3, p=[0.7, 0.3] if n % 2 else [0.3, 0.7]).tolist()
        verdict = max((1, 2), key=choices.count)
        pairs.append(PairSpec(reference_id=ids[n % 10], text=f"q{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                              preference=verdict,
                              votes=tuple({"annotator": f"a{k}", "choice": c} for k, c in enumerate(choices))))
    benchmark = benchmark_store(name="demo-campaign", source="campaign", dataset=fiq_dataset, pairs=pairs).benchmark
    human = np.array([p.preference for p in pairs])
    for name, skill, baseline in [("qure", 0.78, False), ("clip4cir", 0.74, True), ("sprc", 0.70, False),
                                  ("zero-shot-clip", 0.6, True), ("random", 0.5, False)]:
        model = ModelEntry.objects.create(name=name, family="demo", is_baseline=baseline)
        right = rng.permutation(200) < round(skill * 200)
        set1 = np.where(right == (human == 1), 1.0, 0.0) + rng.normal(0, 0.01, 200)
        score = ModelScore.objects.create(model=model, benchmark=benchmark)
        model_score_store(score_id=score.pk, set1=set1, set2=np.full(200, 0.5))
        RetrievalRun.objects.create(model=model, dataset=fiq_dataset, status="finished",
                                    metrics={"avg": 30 + 40 * (skill - 0.5)})


def test_the_leaderboard_page_renders_the_table_and_the_plot(live_server, browser, fiq_dataset, tmp_path):
    _fill(fiq_dataset)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(f"{live_server.url}/leaderboard/demo-campaign/")
    rows = page.locator("table.lb-table tbody tr")
    assert rows.count() == 5
    assert rows.first.locator("td").nth(1).inner_text().startswith("qure")
    plots = page.locator("svg.agreement-plot:visible")  # the phone's plots are hidden
    assert plots.count() == 2  # held-out agreement, preference ratio
    assert plots.first.locator("circle[r='5']").count() == 5  # a point per model ...
    assert plots.first.locator("circle[r='4']").count() == 5  # ... and its figure in the ceiling's units
    assert "human ceiling" in plots.first.text_content()
    assert "chance" in plots.nth(1).text_content()
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
    page.get_by_role("link", name="Model", exact=True).click()
    assert page.locator("table.lb-table tbody tr").first.locator("td").nth(1).inner_text().startswith("clip4cir")
    page.close()
