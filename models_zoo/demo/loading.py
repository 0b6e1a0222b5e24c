"""Demo checkpoints: a folder with ``config.json`` (a :class:`DemoConfig`: vocabulary and sizes) and
``model.safetensors``. ``load_model("demo", None, config={"vocab": [...]})`` builds a fresh random model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models_zoo.checkpoints import DEFAULT_MAX_BYTES, load_state_dict_checked, load_state_dict_file
from models_zoo.demo.model import DemoCIR, DemoConfig
from models_zoo.errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _config(data: dict[str, Any], *, source: str) -> DemoConfig:
    known = set(DemoConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"{source}: unknown demo config keys {unknown}; known: {sorted(known)}")
    try:
        return DemoConfig(**data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid demo config: {exc}") from exc


def save_demo_model(model: DemoCIR, folder: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``folder``; return the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS_NAME))
    (folder / CONFIG_NAME).write_text(json.dumps(model.config.to_dict(), indent=1), encoding="utf-8")
    return folder


def load_demo_model(folder: str | Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> DemoCIR:
    """Read a folder written by :func:`save_demo_model`. Raises CheckpointError naming what is wrong."""
    folder = Path(folder)
    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not folder.is_dir() or not config_path.is_file() or not weights.is_file():
        raise CheckpointError(f"Demo checkpoint {folder}: expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CheckpointError(f"Config {config_path}: not valid JSON: {exc}") from exc
    model = DemoCIR(_config(data, source=str(config_path)))
    load_state_dict_checked(model, load_state_dict_file(weights, max_bytes=max_bytes), source=weights)
    return model.eval()


def load(checkpoint: Path | None, *, variant: str = "combiner", config: dict[str, Any] | None = None) -> DemoCIR:
    """A demo model from a checkpoint folder, or a fresh random one from ``config`` when ``checkpoint`` is None."""
    if checkpoint is None:
        return DemoCIR(_config(dict(config or {}), source="config"), variant=variant)
    model = load_demo_model(checkpoint, max_bytes=(config or {}).get("max_bytes", DEFAULT_MAX_BYTES))
    model.variant = variant
    return model
