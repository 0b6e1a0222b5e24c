"""The embedded demo: the generated dataset, the shipped demo models, and everything computed from them.

``demo_prepare`` runs in the foreground of ``manage.py up`` (files and rows only); ``demo_fill``
runs beside the servers and goes through the same paths a person would: Celery tasks, and the HTTP
API for the simulated annotators. Both are idempotent: they only add what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun

DEMO_DATASET = "demo"
DEMO_SPLIT = "val"
CHECKPOINTS = Path(__file__).resolve().parents[2] / "models_zoo" / "demo" / "checkpoints"

#: name -> (family, variant, checkpoint folder name under models_zoo/demo/checkpoints, baseline?, description)
DEMO_MODELS: dict[str, tuple[str, str, str, bool, str]] = {
    "demo-qure": ("demo", "", "demo-qure", False, "Demo family trained with the QuRe objective."),
    "demo-contrastive": ("demo", "", "demo-contrastive", True, "Demo family trained with in-batch InfoNCE."),
    "demo-image-only": ("demo", "image", "demo-contrastive", True,
                        "Zero-shot heuristic: the reference image alone (demo-contrastive's image encoder)."),
    "demo-text-only": ("demo", "text", "demo-contrastive", True,
                       "Zero-shot heuristic: the modification text alone (demo-contrastive's text encoder)."),
    "demo-sum": ("demo", "sum", "demo-contrastive", True,
                 "Untrained composition: normalise(image + text) over demo-contrastive's encoders."),
}

Log = Callable[[str], object]


def demo_folder() -> Path:
    return Path(settings.HPBENCH_DATA_ROOT) / "demo"


def demo_prepare(*, per_category: int = 400, log: Log = print) -> Dataset:
    """Generate (once) and import the demo dataset, and register the demo models whose checkpoints ship."""
    from hpbench.catalog.demo import make_demo_dataset
    from hpbench.catalog.importers import import_fashioniq
    from hpbench.catalog.services import model_entry_register

    folder = demo_folder()
    if not (folder / "demo_manifest.json").exists():
        log(f"Generating the demo dataset in {folder} …")
        make_demo_dataset(folder, seed=0, per_category=per_category)
    dataset = Dataset.objects.filter(name=DEMO_DATASET).first()
    if dataset is None:
        log("Importing the demo dataset …")
        import_fashioniq(folder, name=DEMO_DATASET)
        dataset = Dataset.objects.get(name=DEMO_DATASET)
    for name, (family, variant, checkpoint, baseline, description) in DEMO_MODELS.items():
        path = CHECKPOINTS / checkpoint
        if not path.exists():
            log(f"skipping {name}: no checkpoint at {path}")
            continue
        if not ModelEntry.objects.filter(name=name).exists():
            model_entry_register(name=name, family=family, variant=variant, checkpoint_path=str(path),
                                 is_baseline=baseline, description=description)
    return dataset


def demo_models() -> list[ModelEntry]:
    return list(ModelEntry.objects.filter(name__in=DEMO_MODELS).order_by("name"))


def _ensure_runs(dataset: Dataset, log: Log) -> list[RetrievalRun]:
    from hpbench.catalog.services import retrieval_run_create

    runs = []
    for model in demo_models():
        run = (RetrievalRun.objects.filter(model=model, dataset=dataset, split=DEMO_SPLIT)
               .exclude(status__in=[RetrievalRun.Status.FAILED, RetrievalRun.Status.CANCELLED])
               .order_by("-id").first())
        if run is None:
            with transaction.atomic():
                run = retrieval_run_create(model=model, dataset=dataset, split=DEMO_SPLIT)
            log(f"queued retrieval run {run.pk} for {model.name}")
        runs.append(run)
    return runs


def wait_for_runs(runs: list[RetrievalRun], *, timeout: float = 3600) -> list[RetrievalRun]:
    deadline = time.monotonic() + timeout
    pending = {run.pk for run in runs}
    while pending and time.monotonic() < deadline:
        done = RetrievalRun.objects.filter(pk__in=pending).exclude(
            status__in=[RetrievalRun.Status.QUEUED, RetrievalRun.Status.RUNNING]
        ).values_list("pk", flat=True)
        pending -= set(done)
        if pending:
            time.sleep(2)
    return list(RetrievalRun.objects.filter(pk__in=[run.pk for run in runs]))


def demo_fill(*, base_url: str, log: Log = print) -> None:
    """Queue and wait for what the demo lacks; log a line per step. Never raises (it runs in a thread)."""
    try:
        dataset = Dataset.objects.get(name=DEMO_DATASET)
        runs = wait_for_runs(_ensure_runs(dataset, log))
        for run in runs:
            log(run_line(run))
        for step in DEMO_STEPS:
            step(dataset=dataset, base_url=base_url, log=log)
        log(f"demo ready: {base_url}/leaderboard/")
    except Exception as exc:  # the servers keep running; the log says what failed
        log(f"demo setup stopped: {type(exc).__name__}: {exc}")


DEMO_CAMPAIGN = "demo-campaign"
TRY_CAMPAIGN = "demo-try-it"


def _wait(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout:.0f} s (is the worker running?)")
        time.sleep(2)


def _campaign_ready(*, slug: str, log: Log, **options) -> None:
    """Create (once), build on the worker, and open a demo campaign comparing the demo models."""
    from annotate.models import Campaign
    from annotate.services.campaigns import campaign_build_enqueue, campaign_create, campaign_set_status

    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        campaign = campaign_create(slug=slug, models=demo_models(), split=DEMO_SPLIT, **options)
        log(f"created campaign {campaign.slug}")
    if not campaign.comparisons.exists():
        with transaction.atomic():
            campaign_build_enqueue(campaign=campaign)
        _wait(lambda: Campaign.objects.get(pk=campaign.pk).build_status in ("built", "failed"),
              timeout=600, what="campaign build")
        campaign.refresh_from_db()
        if campaign.build_status != "built":
            raise RuntimeError(f"campaign build {campaign.build_status}: {campaign.build_error}")
    if campaign.status == Campaign.Status.DRAFT:
        campaign_set_status(campaign=campaign, status=Campaign.Status.OPEN)


def demo_examples(*, campaign) -> None:
    """The first screen's worked example, judged by the demo's relevance oracle: a query of the dataset that no
    comparison of the campaign uses (so it gives no task away), two images that meet the whole request and keep
    the rest (good), two that meet part of it (partial) and two that meet none of it (poor)."""
    from annotate.onboarding import campaign_examples_set
    from hpbench.catalog import oracle
    from hpbench.catalog.models import Image, Query

    used = set(campaign.comparisons.values_list("query_id", flat=True))
    images = list(Image.objects.filter(dataset=campaign.dataset).values_list("pk", "category", "attributes"))
    for query in Query.objects.filter(dataset=campaign.dataset).exclude(pk__in=used).order_by("pk")[:200]:
        attrs = {pk: a or {} for pk, c, a in images if c == query.category and pk != query.reference_id}
        reference = next((a or {} for pk, _c, a in images if pk == query.reference_id), {})
        try:
            requested = oracle.requested_attributes(query.captions, reference)
        except ValueError:
            continue
        if len(requested) < 2:
            continue  # "partial" needs a request of two parts or more
        met = {pk: oracle.requested_met(a, requested) for pk, a in attrs.items()}
        good = sorted((pk for pk in attrs if met[pk] == len(requested)),
                      key=lambda pk: -oracle.relevance(attrs[pk], reference, requested))[:2]
        partial = [pk for pk in attrs if 0 < met[pk] < len(requested)][:2]
        poor = [pk for pk in attrs if met[pk] == 0][:2]
        if len(good) == len(partial) == len(poor) == 2:
            campaign_examples_set(campaign=campaign, reference=query.reference_id, text=" and ".join(query.captions),
                                  good=good, partial=partial, poor=poor)
            return


def step_campaign(*, dataset: Dataset, base_url: str, log: Log) -> None:
    """The demo campaign (voted on by simulated annotators) and a small one for people to try the page."""
    common = {
        "dataset": dataset, "allow_tie": True, "ask_irrelevant": True,
        "instructions": "Pick the set of garments that better shows the reference changed as the text asks.",
        "contact": settings.HPBENCH_DEMO_CONTACT,
    }
    _campaign_ready(slug=DEMO_CAMPAIGN, name="Demo: which result set matches the request better?",
                    # 300 queries (about 330 comparisons, 1,000 votes, 30 s): enough pairs for the preference
                    # model's held-out figures to separate from the best model's.
                    num_queries=300, votes_per_pair=3, gold_share=0.1, per_person_quota=120,
                    completion_code="DEMO-THANKS", log=log,
                    # Its annotators are simulated and answer at once: no minimum time, or every vote is flagged;
                    # nine of them fill every comparison: no cap per model pair.
                    min_vote_ms=0, max_votes_per_model_pair=0, ask_ratings=True, **common)
    _campaign_ready(slug=TRY_CAMPAIGN, name="Try it: vote on a few demo comparisons", num_queries=40,
                    votes_per_pair=1000, gold_share=0.1, per_person_quota=15, completion_code="TRIED-IT",
                    # No ratings: a vote is a choice and Enter (or "both irrelevant" and Enter), as the home page says.
                    ask_ratings=False, log=log, **common)
    from annotate.models import Campaign

    for slug in (DEMO_CAMPAIGN, TRY_CAMPAIGN):
        campaign = Campaign.objects.get(slug=slug)
        if not campaign.examples:
            demo_examples(campaign=campaign)
    # The home page's "Try the voting page" card gives each visitor a participant id of their own.
    log(f"try the voting page: {base_url}/ (Try the voting page)")


def step_simulated_annotators(*, dataset: Dataset, base_url: str, log: Log) -> None:
    """Nine simulated annotators (each with their own bias and noise, 10% random answers on average) vote through
    the HTTP API until every comparison has its three votes."""
    from django.core.management import call_command

    from annotate.models import Campaign, Vote

    campaign = Campaign.objects.get(slug=DEMO_CAMPAIGN)
    if Vote.objects.filter(comparison__campaign=campaign).exists():
        return
    _wait(lambda: _http_ok(f"{base_url}/healthz?timeout=2"), timeout=120, what="web server start")
    log("simulated annotators are voting through the API …")
    call_command("simulate_annotators", campaign.slug, "--annotators", "9", "--noise", "0.1", "--url", base_url,
                 "--seed", "0", "--concurrency", "3")
    log(campaign_line(campaign))


def step_benchmark_and_scores(*, dataset: Dataset, base_url: str, log: Log) -> None:
    """Freeze the campaign into a benchmark and score every demo model on it (on the worker)."""
    from annotate.models import Campaign
    from hpbench.leaderboard.models import ModelScore
    from hpbench.leaderboard.services.benchmarks import benchmark_freeze
    from hpbench.leaderboard.services.scores import model_scores_request

    campaign = Campaign.objects.get(slug=DEMO_CAMPAIGN)
    result = benchmark_freeze(campaign=campaign, name="demo-human-preferences")
    log(benchmark_line(result))
    scores = [score for model in demo_models() for score in model_scores_request(model=model)]
    pending = [score.pk for score in scores]
    _wait(lambda: not ModelScore.objects.filter(pk__in=pending, status__in=["queued", "running"]).exists(),
          timeout=1200, what="scoring")
    for score in ModelScore.objects.filter(pk__in=pending).select_related("model", "benchmark"):
        log(score_line(score))


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback server
            return response.status == 200
    except OSError:
        return False


#: Steps after the retrieval runs, each ``step(dataset=, base_url=, log=)``; each only adds what is missing.
def step_preference_model(*, dataset: Dataset, base_url: str, log: Log) -> None:
    """Train the demo benchmark's preference model (on the worker's ``gpu`` queue) once its scores are in."""
    from hpbench.leaderboard.models import PreferenceBenchmark, PreferenceModel
    from hpbench.leaderboard.services.preference_models import preference_model_request

    benchmark = PreferenceBenchmark.objects.filter(name="demo-human-preferences").order_by("-version").first()
    if benchmark is None or PreferenceModel.objects.filter(benchmark=benchmark, status="finished").exists():
        return
    with transaction.atomic():
        row = preference_model_request(benchmark=benchmark)
    _wait(lambda: PreferenceModel.objects.get(pk=row.pk).status not in ("queued", "running"), timeout=600,
          what="preference model")
    log(preference_model_line(PreferenceModel.objects.get(pk=row.pk)))


DEMO_STEPS: list[Callable[..., None]] = [
    step_campaign, step_simulated_annotators, step_benchmark_and_scores, step_preference_model,
]


# --- Status lines for the terminal: each names its metric and rounds it ---------------------------------------


def _num(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _first_line(text: str) -> str:
    return (text or "no error recorded").strip().splitlines()[0][:200]


def run_line(run: RetrievalRun) -> str:
    """``retrieval run 3, demo-qure: finished, R@10/50 avg 75.2`` (CIRR: ``(R@5+Rsubset@1)/2``)."""
    head = f"retrieval run {run.pk}, {run.model.name}"
    if run.status != RetrievalRun.Status.FINISHED:
        return f"{head}: {run.status}" + (f" ({_first_line(run.error)})" if run.status == "failed" else "")
    avg = (run.metrics or {}).get("avg")
    label = "(R@5+Rsubset@1)/2" if run.dataset.protocol == "cirr" else "R@10/50 avg"
    return f"{head}: finished, {label} {_num(avg, 1)}"


def campaign_line(campaign) -> str:
    """``campaign demo-campaign: 78 votes, agreement 0.869, Krippendorff's alpha 0.74``."""
    from annotate.quality import campaign_figures

    f = campaign_figures(campaign=campaign)
    return (
        f"campaign {campaign.slug}: {f['votes']} votes, agreement {_num(f['pairwise_agreement'], 3)}, "
        f"Krippendorff's alpha {_num(f['krippendorff_alpha'], 3)}"
    )


def benchmark_line(result) -> str:
    """``benchmark demo-human-preferences v1 frozen: 26 pairs from 26 comparisons (dropped: 0 ties, …)``."""
    benchmark, report = result.benchmark, result.report or {}
    state = "frozen" if result.created else "unchanged"
    dropped = report.get("dropped") or {}
    dropped_text = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in dropped.items()) or "none"
    return (
        f"benchmark {benchmark.name} v{benchmark.version} {state}: {report.get('pairs', benchmark.n_pairs)} pairs"
        + (f" from {report['comparisons']} comparisons" if "comparisons" in report else "")
        + f" (dropped: {dropped_text})"
    )


def score_line(score) -> str:
    """``score demo-qure on demo-human-preferences v1: agreement 0.869 [0.80, 0.93], preference ratio 0.871``."""
    head = f"score {score.model.name} on {score.benchmark.name} v{score.benchmark.version}"
    if score.status != "finished":
        return f"{head}: {score.status}" + (f" ({_first_line(score.error)})" if score.status == "failed" else "")
    interval = (
        f" [{_num(score.agreement_low, 2)}, {_num(score.agreement_high, 2)}]" if score.agreement_low is not None else ""
    )
    heldout = ""
    if score.heldout_agreement is not None:  # the headline: on the pairs the model made no set of
        heldout = (f"held-out agreement {_num(score.heldout_agreement, 3)} [{_num(score.heldout_agreement_low, 2)}, "
                   f"{_num(score.heldout_agreement_high, 2)}] n={score.heldout_n_pairs}, all pairs ")
    return (
        f"{head}: {heldout}agreement {_num(score.agreement, 3)}{interval}, "
        f"preference ratio {_num(score.preference_ratio, 3)}"
    )



def preference_model_line(row) -> str:
    """``preference model v1 on demo-human-preferences: held-out agreement 0.812 [0.75, 0.87] (best model demo-qure:
    0.805; margin 0.007 [-0.04, 0.06]; log-loss lower by 0.065 [0.01, 0.12])``: the paired margins when reported."""
    head = f"preference model v{row.version} on {row.benchmark.name}"
    if row.status != "finished":
        return f"{head}: {row.status}" + (f" ({_first_line(row.error)})" if row.status == "failed" else "")
    report = row.report
    pm = report["preference_model"]["agreement"]
    best = report.get("best_model")
    parts = [f"best model {best}: {_num(report['models'][best]['agreement']['value'], 3)}"] if best else []
    for key, label in (("margin_over_best", "margin"), ("log_loss_gain_over_best", "log-loss lower by")):
        if best and report.get(key):
            m = report[key]
            parts.append(f"{label} {_num(m['value'], 3)} [{_num(m['lower'], 2)}, {_num(m['upper'], 2)}]")
    return (f"{head}: held-out agreement {_num(pm['value'], 3)} [{_num(pm['lower'], 2)}, {_num(pm['upper'], 2)}]"
            + (f" ({'; '.join(parts)})" if parts else ""))
