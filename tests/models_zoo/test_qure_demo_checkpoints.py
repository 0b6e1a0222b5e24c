"""The shipped demo checkpoints load through the model zoo and are small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models_zoo import load_model

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models_zoo" / "demo" / "checkpoints"


@pytest.mark.parametrize("name", ["demo-qure", "demo-contrastive"])
def test_a_shipped_demo_checkpoint_loads_and_ranks(name):
    folder = CHECKPOINTS / name
    assert (folder / "model.safetensors").stat().st_size < 5 * 1024 * 1024
    model = load_model("demo", folder, device="cpu")
    height, width = model.config.image_size
    with torch.no_grad():
        images = model.encode_images(torch.randn(4, 3, height, width))
        queries = model.encode_queries(torch.randn(2, 3, height, width), ["is red", "has stripes and is longer"])
    assert model.score(queries, images).shape == (2, 4)
    log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["objective"] == name.removeprefix("demo-")


def test_the_shipped_figures_cover_every_demo_model_with_intervals():
    data = json.loads((CHECKPOINTS / "figures.json").read_text())
    assert set(data["figures"]) == {"demo-qure", "demo-contrastive", "image-only", "text-only", "sum"}
    for name, figures in data["figures"].items():
        for key in ("R@10", "R@50", "agreement"):
            low, high = figures[f"{key}_ci"]
            assert low <= figures[key] <= high, (name, key)
    assert data["near_targets"]["val"]["mean"] >= 3  # trained and evaluated on the gallery with near-targets
    assert 0.5 < data["crowd"]["pairwise_agreement"] < 1.0  # the simulated crowd is not a perfect oracle
