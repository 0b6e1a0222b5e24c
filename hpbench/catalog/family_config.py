"""What a researcher may put in a model's ``config``, per family, and where server paths come from instead.

A researcher's config names no file and lifts no limit: it holds a few bounded numbers per family and, where
the family builds on server-side files (a CLIP folder, a BERT vocabulary), ``"base_model": NAME`` choosing a
:class:`~hpbench.catalog.models.BaseModel` that staff registered with those paths. Unknown keys are refused with
the key's name. Staff (``register_model``, the admin) may still give paths in a model's config directly.

Workers build the config they hand to ``models_zoo.load_model`` with :func:`config_for_loading`, which checks
a submitted model's config again (rows written before this check existed included) and expands ``base_model``.
Web-safe: no torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from hpbench.catalog.models import BaseModel, ModelEntry

BASE_MODEL_KEY = "base_model"


class ConfigError(ValueError):
    """A config (or base model) is refused; ``key`` names the offending key, the message says why."""

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Number:
    """A bounded number option; ``integer`` for whole numbers, ``nullable`` where ``null`` means "off"."""

    minimum: float
    maximum: float
    integer: bool = False
    nullable: bool = False
    help: str = ""

    def clean(self, key: str, value: Any, *, family: str) -> int | float | None:
        where = f"config key {key!r} ({family})"
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{where}: null is not accepted; give a number", key=key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__}", key=key)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number", key=key)
        if self.integer and value != int(value):
            raise ConfigError(f"{where}: expected a whole number, got {value}", key=key)
        if not self.minimum <= value <= self.maximum:
            raise ConfigError(f"{where}: {value} is outside [{self.minimum:g}, {self.maximum:g}]", key=key)
        return int(value) if self.integer else float(value)


_PAD_RATIO = Number(1.0, 4.0, nullable=True, help="target-pad ratio of the preprocessing (null: no padding)")

#: family -> the options a researcher may set (besides ``base_model`` where the family takes one).
RESEARCHER_OPTIONS: dict[str, dict[str, Number]] = {
    "clip_zeroshot": {"pad_ratio": _PAD_RATIO},
    "clip4cir": {
        "pad_ratio": _PAD_RATIO,
        "projection_dim": Number(1, 16384, integer=True, help="Combiner projection size (default: from weights)"),
        "hidden_dim": Number(1, 16384, integer=True, help="Combiner hidden size (default: from weights)"),
    },
    "blip2_cir": {
        "pad_ratio": _PAD_RATIO,
        "max_text_length": Number(1, 512, integer=True, help="tokens kept of the modification text (32)"),
        "vision_num_attention_heads": Number(1, 128, integer=True, help="ViT heads (16 for ViT-g)"),
        "qformer_num_attention_heads": Number(1, 128, integer=True, help="Q-Former heads (12)"),
    },
    "demo": {},
}

#: family -> the config keys naming server-side files, which only a base model (or staff) may give.
BASE_MODEL_PATH_KEYS: dict[str, tuple[str, ...]] = {
    "clip_zeroshot": (),
    "clip4cir": ("clip_folder", "clip_checkpoint", "bpe_vocab"),
    "blip2_cir": ("tokenizer_folder",),
    "demo": (),
}

#: Keys that set a limit of the platform; never a researcher's to choose.
LIMIT_KEYS = ("max_bytes",)


MAX_CONFIG_CHARS = 10_000


def config_parse(text: str) -> dict[str, Any]:
    """A researcher's config as typed in the form or sent to the API: a JSON object ('' is ``{}``).

    Raises :class:`ConfigError` for text over ``MAX_CONFIG_CHARS``, invalid or too deeply nested JSON, or JSON
    that is not an object.
    """
    if not text.strip():
        return {}
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(f"config: {len(text)} characters, over the limit of {MAX_CONFIG_CHARS}")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise ConfigError("config: nested too deeply") from None
    except ValueError as exc:  # an integer past Python's 4,300-digit limit for int(str)
        raise ConfigError(f"config: not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ConfigError("config: expected a JSON object")
    return parsed


def researcher_keys(family: str) -> list[str]:
    """The config keys a researcher may give for ``family``, in a stable order."""
    keys = list(RESEARCHER_OPTIONS.get(family, {}))
    if BASE_MODEL_PATH_KEYS.get(family):
        keys.insert(0, BASE_MODEL_KEY)
    return keys


def _base_model(family: str, name: Any) -> BaseModel:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"config key {BASE_MODEL_KEY!r} ({family}): expected a base model's name", key=BASE_MODEL_KEY)
    found = BaseModel.objects.filter(family=family, name=name).first()
    if found is None:
        known = list(BaseModel.objects.filter(family=family).values_list("name", flat=True))
        raise ConfigError(
            f"config key {BASE_MODEL_KEY!r} ({family}): no base model named {name!r}; registered for {family}: "
            + (", ".join(known) if known else "none (ask the platform's staff to register one)"),
            key=BASE_MODEL_KEY,
        )
    return found


def researcher_config_clean(*, family: str, config: Any) -> dict[str, Any]:
    """Check a researcher's ``config`` for ``family`` and return it with numbers normalised.

    Raises :class:`ConfigError` naming the key: a path or limit key, an unknown key, a value of the wrong type
    or out of bounds, or a ``base_model`` that is not registered for the family.
    """
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError("config: expected a JSON object")
    if family not in RESEARCHER_OPTIONS:
        raise ConfigError(f"config: unknown family {family!r}")
    options = RESEARCHER_OPTIONS[family]
    accepted = ", ".join(researcher_keys(family)) or "none"
    cleaned: dict[str, Any] = {}
    for key, value in config.items():
        if key == BASE_MODEL_KEY and BASE_MODEL_PATH_KEYS[family]:
            cleaned[key] = _base_model(family, value).name
        elif key in BASE_MODEL_PATH_KEYS[family] or key.endswith(("_folder", "_path", "_checkpoint", "_file")):
            raise ConfigError(
                f"config key {key!r}: server paths cannot be given in a submission"
                + (f"; choose a registered base model with {BASE_MODEL_KEY!r}" if BASE_MODEL_PATH_KEYS[family]
                   else "") + f" (accepted keys for {family}: {accepted})",
                key=key,
            )
        elif key in LIMIT_KEYS:
            raise ConfigError(f"config key {key!r}: a platform limit, not a submission option "
                              f"(accepted keys for {family}: {accepted})", key=key)
        elif key in options:
            cleaned[key] = options[key].clean(key, value, family=family)
        else:
            raise ConfigError(f"config key {key!r}: unknown for {family} (accepted keys: {accepted})", key=key)
    return cleaned


def base_model_paths_clean(*, family: str, paths: Any, check_exists: bool = True) -> dict[str, str]:
    """Check a base model's ``paths`` (staff input): keys the family takes, absolute paths that exist.

    Returns them resolved. Raises :class:`ConfigError` naming the key.
    """
    if family not in BASE_MODEL_PATH_KEYS:
        raise ConfigError(f"family {family!r}: unknown")
    keys = BASE_MODEL_PATH_KEYS[family]
    if not keys:
        raise ConfigError(f"family {family}: takes no base model (its checkpoints carry everything)")
    if not isinstance(paths, dict) or not paths:
        raise ConfigError(f"paths: expected an object with some of {', '.join(keys)}")
    cleaned: dict[str, str] = {}
    for key, value in paths.items():
        if key not in keys:
            raise ConfigError(f"paths key {key!r}: not a file {family} takes; use {', '.join(keys)}", key=key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"paths key {key!r}: expected a path", key=key)
        path = Path(value).expanduser()
        if not path.is_absolute():
            raise ConfigError(f"paths key {key!r}: {value} is not an absolute path", key=key)
        if check_exists and not path.exists():
            raise ConfigError(f"paths key {key!r}: {value}: no such file or folder", key=key)
        cleaned[key] = str(path.resolve())
    return cleaned


@transaction.atomic
def base_model_register(*, name: str, family: str, paths: dict[str, str], description: str = "") -> BaseModel:
    """Register (or update, by name) a base model; raises :class:`ConfigError` for bad paths or a bad name."""
    from django.core.validators import validate_slug

    try:
        validate_slug(name)
    except Exception:
        raise ConfigError(f"name {name!r}: use letters, digits, '-' and '_' only", key="name") from None
    cleaned = base_model_paths_clean(family=family, paths=paths)
    entry, _ = BaseModel.objects.update_or_create(
        name=name, defaults={"family": family, "paths": cleaned, "description": description}
    )
    return entry


def is_submitted(entry: ModelEntry) -> bool:
    """Whether ``entry`` came from a researcher's submission (its config is untrusted)."""
    return hasattr(entry, "submission")  # the reverse one-to-one raises (an AttributeError) when absent


def config_for_loading(*, entry: ModelEntry) -> dict[str, Any]:
    """The config to hand to ``models_zoo.load_model`` for ``entry``.

    A submitted model's config is checked again with :func:`researcher_config_clean` (so a path or limit in
    it never reaches a loader) and gets the platform's size limit. ``base_model`` is replaced by the base
    model's paths (staff-registered models may name one too; their own keys win). Raises :class:`ConfigError`.
    """
    config = dict(entry.config or {})
    if is_submitted(entry):
        config = researcher_config_clean(family=entry.family, config=config)
        config["max_bytes"] = int(settings.HPBENCH_MAX_CHECKPOINT_BYTES)
    name = config.pop(BASE_MODEL_KEY, None)
    if name is not None:
        paths = _base_model(entry.family, name).paths
        config = {**paths, **config} if not is_submitted(entry) else {**config, **paths}
    return config
