"""Researchers' pages in headless Chromium at a desktop and a phone width: the leaderboard and the submit page fit
a 390 px screen, the variant drop-down follows the family, and a researcher's log and token pages render.

Set HPBENCH_SCREENSHOT_DIR to keep the screenshots (1440x900 and 390x844) for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.leaderboard.models import ModelScore, Submission
from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
from hpbench.leaderboard.services.scores import model_score_store
from tests.leaderboard.conftest import make_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT_DIR = os.environ.get("HPBENCH_SCREENSHOT_DIR", "")
VIEWPORTS = [({"viewport": {"width": 1440, "height": 900}}, "desktop"),
             ({"viewport": {"width": 390, "height": 844}}, "phone")]


def _screenshot(page, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"), full_page=True)


def _fill_leaderboard(tmp_path) -> str:
    dataset = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))
    categories = ("dress", "shirt", "toptee")
    ids = list(make_images(dataset, {f"i{n}": categories[n % 3] for n in range(12)}).values())
    rng = np.random.default_rng(3)
    pairs = []
    for n in range(240):
        choices = rng.choice([1, 2], size=3, p=[0.7, 0.3] if n % 2 else [0.3, 0.7]).tolist()
        pairs.append(PairSpec(reference_id=ids[n % 12], text=f"q{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                              preference=max((1, 2), key=choices.count),
                              votes=tuple({"annotator": f"a{k}", "choice": c} for k, c in enumerate(choices))))
    benchmark = benchmark_store(name="hp-fashioniq", source="campaign", dataset=dataset, pairs=pairs).benchmark
    human = np.array([p.preference for p in pairs])
    models = [("qure-clip-l-released-checkpoint", 0.78, False, "https://arxiv.org/abs/0000.00001"),
              ("clip4cir-rn50x4", 0.74, True, ""), ("sprc-vit-g", 0.70, False, ""),
              ("zero-shot-clip-sum", 0.6, True, ""), ("random", 0.5, False, "")]
    for name, skill, baseline, paper in models:
        model = ModelEntry.objects.create(name=name, family="blip2_cir", variant="qure", is_baseline=baseline,
                                          paper_url=paper, code_url="https://github.com/example/x" if paper else "")
        right = rng.permutation(240) < round(skill * 240)
        set1 = np.where(right == (human == 1), 1.0, 0.0) + rng.normal(0, 0.01, 240)
        score = ModelScore.objects.create(model=model, benchmark=benchmark)
        model_score_store(score_id=score.pk, set1=set1, set2=np.full(240, 0.5))
        RetrievalRun.objects.create(model=model, dataset=dataset, status="finished",
                                    metrics={"avg": 30 + 40 * (skill - 0.5)})
    return benchmark.name


def _fits(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("browser_context_args, label", VIEWPORTS)
def test_the_leaderboard_explains_itself_and_fits_the_screen(page, live_server, tmp_path, label):
    name = _fill_leaderboard(tmp_path)
    page.goto(f"/leaderboard/{name}/")
    width = page.viewport_size["width"]
    assert _fits(page) <= width
    assert page.locator("table.lb-table th.lb-category").all_inner_texts() == ["dress ↑", "shirt ↑", "toptee ↑"]
    shown = page.locator("section[aria-labelledby='plot-h'] svg.agreement-plot:visible")  # the headline plot
    assert shown.count() == 1
    assert page.locator("svg.agreement-plot:visible").count() == 2  # and the preference ratio's, with its chance
    assert ("agreement-plot-compact" in shown.get_attribute("class")) == (label == "phone")
    assert "chance" in shown.text_content()
    assert shown.bounding_box()["width"] <= width
    # The explanation is folded below the table; the caption's link opens it.
    assert not page.get_by_role("heading", name="How to read this table").is_visible()
    page.locator("caption a[href='#how-to-read']").click()
    assert page.get_by_role("heading", name="How to read this table").is_visible()
    assert page.get_by_role("link", name="paper").first.get_attribute("href") == "https://arxiv.org/abs/0000.00001"
    assert page.get_by_role("link", name="Submit a model").first.is_visible()
    _screenshot(page, f"leaderboard_{label}")


@pytest.mark.parametrize("browser_context_args, label", VIEWPORTS)
def test_the_submit_page_fits_and_its_variant_list_follows_the_family(page, live_server, label):
    page.goto("/submit/")
    assert _fits(page) <= page.viewport_size["width"]
    family, variant = page.locator("#rs-family"), page.locator("#rs-variant")
    assert family.input_value() == "clip4cir" and variant.input_value() == "combiner"
    family.select_option("blip2_cir")
    assert variant.input_value() == "qure"
    enabled = variant.locator("option:not([disabled])").evaluate_all("options => options.map(o => o.value)")
    assert enabled == ["qure", "sprc"]
    variant.select_option("sprc")
    assert "--family blip2_cir --variant sprc" in page.locator("#rs-command").inner_text()
    assert page.locator("tr.rs-chosen").get_attribute("data-variant") == "sprc"
    _screenshot(page, f"submit_{label}")


@pytest.mark.parametrize("browser_context_args, label", VIEWPORTS)
def test_a_researchers_log_and_token_pages_fit_the_screen(page, live_server, tmp_path, settings, label,
                                                         django_user_model):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    owner = django_user_model.objects.create_user(username="ada", password="ada-pass-12345")
    dataset = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))
    model = ModelEntry(name="sub-1", family="clip4cir", owner=owner, is_public=False)
    model.checkpoint_file.save("clip4cir-rn50x4-fashioniq.pt", ContentFile(b"PK" + b"0" * 4096), save=False)
    model.save()
    submission = Submission.objects.create(owner=owner, model=model, family="clip4cir", variant="combiner",
                                           status="running", log="[2026-11-30 07:00:00] queued retrieval run 1")
    RetrievalRun.objects.create(model=model, dataset=dataset, status="failed",
                                error=f"CheckpointError: Checkpoint {model.checkpoint_file.path}: no 'Combiner' key "
                                      "(found 'state_dict'); save the Combiner as CLIP4Cir's combiner_train.py does")
    page.goto("/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "ada-pass-12345")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/submissions/{submission.pk}/log/")
    assert page.locator("tr.rs-job").count() == 1
    assert "…/clip4cir-rn50x4-fashioniq.pt" in page.locator("pre.rs-error").inner_text()
    assert _fits(page) <= page.viewport_size["width"]
    _screenshot(page, f"submission_log_{label}")
    page.goto("/account/token/")
    page.get_by_role("button", name="Create a token").click()
    assert len(page.locator("#api-token").inner_text()) == 40
    assert _fits(page) <= page.viewport_size["width"]
    _screenshot(page, f"token_{label}")
