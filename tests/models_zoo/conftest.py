"""Tiny random checkpoints shared by the model-zoo tests (built once per session, no downloads)."""

from __future__ import annotations

import pytest
from PIL import Image

from models_zoo import tiny


@pytest.fixture(scope="session")
def tiny_clip_folder(tmp_path_factory):
    return tiny.make_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def tiny_clip4cir_folder(tmp_path_factory):
    return tiny.make_tiny_clip4cir(tmp_path_factory.mktemp("clip4cir"))


@pytest.fixture(scope="session")
def tiny_blip2_folder(tmp_path_factory):
    return tiny.make_tiny_blip2(tmp_path_factory.mktemp("blip2"))


@pytest.fixture(scope="session")
def tiny_blip2_lavis_file(tmp_path_factory):
    return tiny.make_tiny_blip2_lavis(tmp_path_factory.mktemp("blip2_lavis"))


@pytest.fixture(scope="session")
def tiny_demo_folder(tmp_path_factory):
    return tiny.make_tiny_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def images():
    """Three distinct images of different shapes."""
    return [
        Image.new("RGB", (100, 300), (200, 30, 30)),
        Image.new("RGB", (64, 64), (20, 120, 220)),
        Image.effect_noise((90, 60), 40).convert("RGB"),
    ]


TEXTS = ["is red with long sleeves", "has stripes and is shorter", "is blue and darker"]


@pytest.fixture
def texts():
    return list(TEXTS)
