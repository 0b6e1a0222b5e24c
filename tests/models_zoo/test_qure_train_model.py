"""``train_model`` on a tiny generated demo dataset in the database, and the same through a real worker."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from hpbench import media
from hpbench.catalog.demo import make_demo_dataset
from hpbench.catalog.importers import import_fashioniq
from hpbench.catalog.models import ModelEntry
from models_zoo import load_model

TINY = json.dumps({"image_size": [20, 16], "channels": [8, 16], "embed_dim": 16, "word_dim": 8, "hidden_dim": 16})


@pytest.fixture
def tiny_demo(tmp_path) -> str:
    root = make_demo_dataset(tmp_path / "demo", seed=1, per_category=10).out
    import_fashioniq(root, name="demo-tiny")
    return "demo-tiny"


def run(*args: str) -> str:
    out = StringIO()
    call_command("train_model", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_it_trains_writes_a_registrable_checkpoint_and_resumes(tiny_demo, tmp_path):
    folder = tmp_path / "out"
    common = [
        "--family",
        "demo",
        "--dataset",
        tiny_demo,
        "--objective",
        "qure",
        "--out",
        str(folder),
        "--lr",
        "1e-3",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--config",
        TINY,
    ]
    printed = run(*common, "--epochs", "2")
    assert "epoch 1/2" in printed and "val R@10" in printed and "negatives[warmup]" in printed
    assert {"model.safetensors", "config.json", "train_log.jsonl", "trainer_state.pt"} <= {
        p.name for p in folder.iterdir()
    }
    model = load_model("demo", folder)
    assert model.config.image_size == (20, 16)

    call_command("register_model", "demo-tiny-qure", "--family", "demo", "--checkpoint", str(folder), stdout=StringIO())
    assert ModelEntry.objects.get(name="demo-tiny-qure").checkpoint_path.endswith("out")

    printed = run(*common, "--epochs", "3", "--resume")
    assert "epoch 3/3" in printed and "epoch 1/3" not in printed
    epochs = [json.loads(line)["epoch"] for line in (folder / "train_log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


@pytest.mark.django_db
def test_it_names_an_unknown_dataset_or_an_untrainable_family(tiny_demo, tmp_path):
    base = ["--objective", "contrastive", "--epochs", "1", "--out", str(tmp_path / "x"), "--device", "cpu"]
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        run("--family", "demo", "--dataset", "nope", *base)
    with pytest.raises(CommandError, match="trainable families: demo"):
        run("--family", "clip4cir", "--dataset", tiny_demo, *base)
    with pytest.raises(CommandError, match="cannot resume"):
        run("--family", "demo", "--dataset", tiny_demo, *base, "--resume", "--config", TINY)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_through_the_gpu_queue_task(celery_worker_process, tiny_demo, tmp_path):
    import time

    from django.db import transaction

    from hpbench.catalog.models import TrainingJob

    folder = Path(tmp_path / "worker-out")
    out = StringIO()
    with transaction.atomic():  # `train_model --queue`: a job row, sent to the gpu queue after commit
        call_command("train_model", "--family", "demo", "--dataset", tiny_demo, "--objective", "contrastive",
                     "--epochs", "1", "--out", str(folder), "--lr", "1e-3", "--batch-size", "4", "--queue", "--json",
                     stdout=out)
    job = TrainingJob.objects.get(pk=json.loads(out.getvalue())["training_job"])
    deadline = time.monotonic() + 180
    while job.status in ("queued", "running"):
        assert time.monotonic() < deadline, f"the training job is still {job.status} after 180 s"
        time.sleep(0.5)
        job.refresh_from_db()
    assert job.status == "finished", job.error
    assert job.summary["epochs_run"] == 1 and job.progress == 1.0 and job.claimed_by and job.restarts == 0
    assert (folder / "model.safetensors").is_file()
    assert not (folder / ".training.lock").exists()
    # The folder is also in the media storage, for the web server and other machines.
    assert "training/worker-out/model.safetensors" in job.summary["stored"]
    assert media.read_bytes("training/worker-out/model.safetensors") == (folder / "model.safetensors").read_bytes()
