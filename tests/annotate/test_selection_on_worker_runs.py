"""Informative pair selection built on retrieval runs a real worker produced and stored through the media storage
API, on a folder and on an S3 bucket (moto's server): the build (a worker task) and a refresh (the web side) read
each run's top-K by its storage name, whatever the working directory."""

from __future__ import annotations

import json
import time
import uuid
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command

from annotate.models import Campaign, Comparison
from annotate.services.campaign_build import campaign_refresh
from annotate.services.campaigns import campaign_build_enqueue, campaign_create
from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from models_zoo.tiny import make_tiny_clip
from tests.catalog.conftest import build_fashioniq, write_png
from tests.conftest import worker_process

pytestmark = pytest.mark.django_db(transaction=True)


def _json(command: str, *args: str) -> dict:
    out = StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def _wait_built(campaign: Campaign, timeout: float = 120) -> Campaign:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        campaign.refresh_from_db()
        if campaign.build_status in (Campaign.BuildStatus.BUILT, Campaign.BuildStatus.FAILED):
            return campaign
        time.sleep(0.3)
    raise AssertionError(f"campaign {campaign.slug} not built within {timeout} s")


def _runs_then_informative_campaign(tmp_path: Path, monkeypatch) -> Campaign:
    """Three tiny CLIPs ranked by the worker, then an informative campaign built by the worker's task and
    refreshed here, from another working directory than the one the worker and the runs know."""
    root = build_fashioniq(tmp_path / "fiq")
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]):
        write_png(root / "images" / f"Dva{i}.png", colour)  # distinct images: the models' top sets differ
    _json("import_dataset", "fashioniq", str(root), "--name", "fiq", "--categories", "dress", "--splits", "val")
    models = []
    for seed in (1, 2, 3):
        _json("register_model", f"tiny-{seed}", "--family", "clip_zeroshot", "--checkpoint",
              str(make_tiny_clip(tmp_path / f"clip-{seed}", seed=seed)))
        run = _json("run_retrieval", f"tiny-{seed}", "fiq", "--split", "val", "--topk", "4", "--wait",
                    "--timeout", "180")
        assert run["status"] == "finished", run
        stored = RetrievalRun.objects.get(pk=run["run"])
        assert stored.results_path == f"runs/run-{stored.pk}.npz"  # a storage name, not a path
        models.append(ModelEntry.objects.get(name=f"tiny-{seed}"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a storage name read as a path relative to here finds nothing
    campaign = campaign_create(
        slug=f"sel-{uuid.uuid4().hex[:6]}", name="selection", dataset=Dataset.objects.get(name="fiq"), models=models,
        split="val", set_size=2, num_queries=4, gold_share=0.0, pair_selection="informative", random_share=0.5,
    )
    assert campaign_build_enqueue(campaign=campaign)
    campaign = _wait_built(campaign)
    assert campaign.build_status == Campaign.BuildStatus.BUILT, campaign.build_error
    built = Comparison.objects.filter(campaign=campaign, is_gold=False).count()
    assert built >= 1, campaign.selection_rounds
    # A refresh asking for more than is left draws every remaining candidate (π = 1).
    added = campaign_refresh(campaign=campaign, count=100)
    campaign.refresh_from_db()
    build_round, refresh_round = campaign.selection_rounds
    assert refresh_round["pool"] == added == build_round["pool"] - built
    assert Comparison.objects.filter(campaign=campaign, is_gold=False).count() == build_round["pool"]
    return campaign


def test_informative_selection_builds_and_refreshes_on_runs_a_worker_stored_in_a_media_folder(
    celery_worker_process, tmp_path, monkeypatch
):
    campaign = _runs_then_informative_campaign(tmp_path, monkeypatch)
    assert all(c.selection_pi > 0 for c in Comparison.objects.filter(campaign=campaign))


def test_informative_selection_builds_and_refreshes_on_runs_a_worker_stored_in_a_bucket(
    s3_media, django_db_blocker, tmp_path, monkeypatch, settings
):
    settings.MEDIA_ROOT = str(tmp_path / "web-media")
    from hpbench.celery import app

    queue = f"remote-{uuid.uuid4().hex[:8]}"
    send = app.send_task
    env = {**s3_media, "HPBENCH_MEDIA_ROOT": str(tmp_path / "worker-media"),
           "HPBENCH_WORKER_CACHE": str(tmp_path / "worker-cache")}
    with (
        worker_process(django_db_blocker, env=env, name="selection-worker", queues=queue),
        mock.patch.object(app, "send_task", lambda name, **kw: send(name, queue=queue, **kw)),
    ):
        campaign = _runs_then_informative_campaign(tmp_path, monkeypatch)
    assert all(c.selection_pi > 0 for c in Comparison.objects.filter(campaign=campaign))
    assert not any((tmp_path / "web-media").rglob("*.npz"))  # the runs were read from the bucket
