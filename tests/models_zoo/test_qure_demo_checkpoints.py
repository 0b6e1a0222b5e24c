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
