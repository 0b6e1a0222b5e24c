"""Safe checkpoint reading: nothing in a checkpoint file is ever executed.

- ``.safetensors`` is read with safetensors (a JSON header plus raw tensor bytes).
- ``.pt`` / ``.pth`` / ``.bin`` are read only with ``torch.load(path, map_location="cpu", weights_only=True)``,
  whose restricted unpickler refuses any global other than tensors and plain containers, so a pickle
  with a ``__reduce__`` that would run code is rejected before anything runs. A zip archive whose members
  declare more than ``max_bytes`` or 4 times the file's size (a compression bomb) is refused first
  (``models_zoo/archives.py``).

Every problem surfaces as :class:`~models_zoo.errors.CheckpointError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models_zoo.archives import ArchiveError, check_zip_archive
from models_zoo.errors import CheckpointError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
#: Default upper bound on a checkpoint file (official ViT-g BLIP-2 checkpoints are ~4-8 GB).
DEFAULT_MAX_BYTES = 16 * 1024**3
_LIST_LIMIT = 5


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def check_file(path: str | Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Path:
    """Return ``path`` as a Path after checking it exists, is a file, has a known extension and fits
    ``max_bytes`` (``None`` = no limit). Raises CheckpointError otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path}: file not found")
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path}: not a regular file")
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES:
        raise CheckpointError(
            f"Checkpoint {path}: unsupported extension {suffix or '(none)'!r}; "
            f"expected one of {', '.join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)}"
        )
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise CheckpointError(f"Checkpoint {path}: file is {_human(size)}, over the limit of {_human(max_bytes)}")
    if size == 0:
        raise CheckpointError(f"Checkpoint {path}: file is empty")
    return path


def refuse_torchscript(path: Path) -> None:
    """Raise CheckpointError saying how to convert when ``path`` is a TorchScript archive (OpenAI's CLIP downloads
    such as ``RN50x4.pt``): code, not a state dict, which is never loaded here because loading runs its code."""
    try:
        with zipfile.ZipFile(path) as archive:
            scripted = any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return
    if scripted:
        raise CheckpointError(
            f"Checkpoint {path}: a TorchScript archive (the format of OpenAI's CLIP downloads), which hpbench does "
            "not load because loading runs its code; convert it once where you trust it: "
            f"torch.save(torch.jit.load('{path.name}', map_location='cpu').state_dict(), '{path.stem}_state.pt') "
            "(or save that state dict with safetensors.torch.save_file) and give that file instead"
        )


def load_checkpoint_file(path: str | Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Any:
    """Read a checkpoint file safely and return its content on CPU.

    A ``.safetensors`` file gives a ``dict[str, Tensor]``; a ``.pt/.pth/.bin`` file gives whatever
    plain structure it holds (dicts, lists, tensors, numbers, strings). Raises CheckpointError for a
    missing, oversized, empty, truncated/corrupt or code-carrying file (a TorchScript archive gets the way to
    convert it), a zip archive that unpacks past ``max_bytes`` or 4 times its size, or an unknown extension.
    """
    path = check_file(path, max_bytes=max_bytes)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises SafetensorError / OSError / ValueError
            raise CheckpointError(
                f"Checkpoint {path}: not a valid safetensors file (truncated or corrupt?): {exc}"
            ) from exc
    refuse_torchscript(path)
    if zipfile.is_zipfile(path):  # torch.save's format; a legacy pickle is refused by torch.load below
        try:
            check_zip_archive(path, name=str(path), max_unpacked_bytes=max_bytes)
        except ArchiveError as exc:
            raise CheckpointError(f"Checkpoint {path}: refused before loading: {exc}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), first)
        raise CheckpointError(
            f"Checkpoint {path}: refused, the pickle references objects other than tensors "
            f"and plain containers, which could run code when loaded ({detail}). Nothing was executed; "
            "re-export the weights as safetensors or a plain state dict."
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"Checkpoint {path}: cannot be read (truncated or corrupt?): {exc}") from exc


def as_state_dict(obj: Any, *, source: str | Path, prefer: Iterable[str] = ("model", "state_dict")) -> dict:
    """Return the flat ``{name: Tensor}`` state dict inside a loaded checkpoint object.

    Accepts a flat mapping, or a mapping whose key in ``prefer`` holds one (LAVIS saves ``{"model": sd, ...}``).
    Raises CheckpointError when no such mapping is found.
    """
    if isinstance(obj, Mapping):
        for key in prefer:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return dict(obj)
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        raise CheckpointError(
            f"Checkpoint {source}: no state dict found (top-level keys: {keys}; looked for a flat "
            f"name->tensor mapping or one under {', '.join(repr(p) for p in prefer)})"
        )
    raise CheckpointError(f"Checkpoint {source}: expected a mapping of tensors, got {type(obj).__name__}")


def load_state_dict_file(path: str | Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> dict:
    """``as_state_dict(load_checkpoint_file(path))``: the flat state dict of a checkpoint file."""
    return as_state_dict(load_checkpoint_file(path, max_bytes=max_bytes), source=path)


def _listing(title: str, names: list[str]) -> str:
    shown = ", ".join(names[:_LIST_LIMIT])
    more = f", ... ({len(names) - _LIST_LIMIT} more)" if len(names) > _LIST_LIMIT else ""
    return f"{len(names)} {title}: {shown}{more}"


def state_dict_problems(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, allow_missing: Iterable[str] = ()
) -> tuple[list[str], list[str], list[str]]:
    """Compare ``state_dict`` with ``module``'s: (missing keys, unexpected keys, shape mismatches).

    Keys in ``module`` that start with one of ``allow_missing`` may be absent. A shape mismatch reads
    ``"name: checkpoint (a, b) vs model (c, d)"``.
    """
    expected = module.state_dict()
    allowed = tuple(allow_missing)
    missing = [k for k in expected if k not in state_dict and not (allowed and k.startswith(allowed))]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    return missing, unexpected, mismatched


def load_state_dict_checked(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str | Path = "state dict",
    allow_missing: Iterable[str] = (),
) -> nn.Module:
    """Load ``state_dict`` into ``module`` strictly, or raise CheckpointError listing what is wrong.

    The message names ``source`` and gives counts plus the first few missing keys, unexpected keys and
    shape mismatches. Keys starting with a prefix in ``allow_missing`` may be absent (they keep the
    module's values). Returns ``module``.
    """
    missing, unexpected, mismatched = state_dict_problems(module, state_dict, allow_missing=allow_missing)
    if missing or unexpected or mismatched:
        parts = [
            _listing(title, names)
            for title, names in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if names
        ]
        raise CheckpointError(f"Checkpoint {source} does not match {type(module).__name__}: " + "; ".join(parts))
    module.load_state_dict(dict(state_dict), strict=False)
    return module


def checkpoint_fingerprint(path: str | Path, *, hash_bytes: int = 1 << 20) -> str:
    """A short identity of a checkpoint file or folder for cache keys.

    Combines, for each file (sorted), its relative name, size, mtime and a SHA-256 of its first
    ``hash_bytes`` bytes; changes when a file is replaced or rewritten. Raises CheckpointError if missing.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path}: not found")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(f"{f.relative_to(path) if f != path else f.name}|{st.st_size}|{st.st_mtime_ns}|".encode())
        with f.open("rb") as fh:
            digest.update(fh.read(hash_bytes))
    return digest.hexdigest()[:16]
