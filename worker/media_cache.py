"""A worker's local copies of stored media it reads repeatedly (checkpoints, embedding stores).

Model loaders (``models_zoo``) take local paths. On a folder storage (``HPBENCH_STORAGE=filesystem``) the
stored file is already one and is used in place. On an object store each file is downloaded once into
``HPBENCH_WORKER_CACHE``, under a folder keyed by the storage name, size and modification time: a file replaced
in the storage gets a new key, hence a fresh copy. Downloads go to a temporary name renamed into place, so a
half-downloaded file is never read, and the copy keeps the stored modification time, so its checkpoint
fingerprint (hence the embedding stores' names) is the same on every worker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path, PurePosixPath

from django.conf import settings

from hpbench import media


def cache_root() -> Path:
    return Path(settings.HPBENCH_WORKER_CACHE)


def _stat(name: str) -> tuple[int, datetime]:
    store = media.storage()
    try:
        return store.size(name), store.get_modified_time(name)
    except FileNotFoundError:
        raise media.MediaError(f"media {name}: no such file in the media storage") from None
    except Exception:  # botocore's ClientError for a missing key
        if not store.exists(name):
            raise media.MediaError(f"media {name}: no such file in the media storage") from None
        raise


def _download(name: str, target: Path, *, size: int, modified: datetime) -> None:
    """Copy the stored ``name`` to ``target`` atomically, stamped with the stored modification time."""
    if target.is_file() and target.stat().st_size == size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, media.open_stored(name) as source:
            shutil.copyfileobj(source, out, length=1 << 20)
        got = os.path.getsize(tmp)
        if got != size:
            raise media.MediaError(f"media {name}: downloaded {got} bytes, the storage says {size}")
        stamp = modified.timestamp()
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:24]


def local_file(name: str) -> Path:
    """A local path holding the stored file ``name``; raises :class:`hpbench.media.MediaError` when it is not
    stored."""
    store = media.storage()
    if media.is_local():
        path = Path(store.path(name))
        if not path.is_file():
            raise media.MediaError(f"media {name}: no such file in the media storage ({path})")
        return path
    size, modified = _stat(name)
    target = cache_root() / "files" / _key(name, size, modified.isoformat()) / PurePosixPath(name).name
    _download(name, target, size=size, modified=modified)
    return target


def local_folder(prefix: str) -> Path:
    """A local folder holding every stored file under ``prefix`` (sub-folders kept), for loaders that read
    companion files beside a checkpoint. Raises :class:`hpbench.media.MediaError` when nothing is stored there."""
    store = media.storage()
    if media.is_local():
        path = Path(store.path(prefix))
        if not path.is_dir():
            raise media.MediaError(f"media {prefix}: no such folder in the media storage ({path})")
        return path
    files = [(name, *_stat(name)) for name, _ in media.walk(prefix)]
    if not files:
        raise media.MediaError(f"media {prefix}: no such folder in the media storage")
    state = [(name, size, modified.isoformat()) for name, size, modified in files]
    folder = cache_root() / "folders" / _key(prefix, *state) / PurePosixPath(prefix).name
    for name, size, modified in files:
        relative = PurePosixPath(name).relative_to(prefix.rstrip("/"))
        _download(name, folder.joinpath(*relative.parts), size=size, modified=modified)
    return folder
