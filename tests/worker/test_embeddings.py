"""The worker loads a submitted model with its base model's paths and never with a path from its config."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.family_config import ConfigError, base_model_register
from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.services.submissions import submission_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def loads(monkeypatch) -> list[dict]:
    import worker.embeddings

    calls: list[dict] = []
    monkeypatch.setattr(worker.embeddings, "load_model",
                        lambda family, checkpoint, **kwargs: calls.append({"family": family, **kwargs}) or object())
    return calls


def _submitted(owner, config: dict) -> ModelEntry:
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
    return submission_create(owner=owner, family="clip4cir", file=upload, config=config).model


def test_a_submitted_model_loads_with_its_base_models_folder_and_the_platform_limit(researcher, tmp_path, loads):
    from worker.embeddings import model_for_entry

    (tmp_path / "clip").mkdir()
    base_model_register(name="clip-b32", family="clip4cir", paths={"clip_folder": str(tmp_path / "clip")})
    entry = _submitted(researcher, {"base_model": "clip-b32", "pad_ratio": 1.1})
    model_for_entry(entry)
    assert loads[0]["config"] == {"pad_ratio": 1.1, "clip_folder": str(tmp_path / "clip"), "max_bytes": 2 * 1024**3}


def test_a_path_smuggled_into_a_submitted_models_config_stops_the_load(researcher, loads):
    from worker.embeddings import model_for_entry

    entry = _submitted(researcher, {})
    ModelEntry.objects.filter(pk=entry.pk).update(config={"clip_checkpoint": "/srv/media/checkpoints/theirs.pt"})
    entry.refresh_from_db()
    with pytest.raises(ConfigError, match="'clip_checkpoint': server paths cannot be given"):
        model_for_entry(entry)
    assert loads == []
