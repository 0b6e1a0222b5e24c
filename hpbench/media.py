"""Reading and writing media through Django's default storage (``STORAGES["default"]``), web-safe.

Media is everything the web server and the workers exchange as files: uploaded checkpoints and score files,
embedding stores, runs' top-K and submission files, export files. Names are storage names (``runs/run-3.npz``),
never absolute paths, so the same row reads the same on every machine whatever the backend
(``hpbench/storage_config.py``). Rows written before media went through storage may hold an absolute path;
:func:`open_stored` still reads those.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO

from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages


class MediaError(OSError):
    """A stored file cannot be read or written; the message names it."""


def storage() -> Storage:
    """The media storage (``STORAGES["default"]``)."""
    return storages["default"]


def is_local() -> bool:
    """Whether media is a folder of this machine (``HPBENCH_STORAGE=filesystem``)."""
    return isinstance(storage(), FileSystemStorage)


def save_bytes(name: str, data: bytes | IO[bytes]) -> str:
    """Store ``data`` under exactly ``name``, replacing what was there; returns ``name``.

    A reader never sees half a file: on a folder the bytes go to a temporary file renamed over ``name``; an
    object store replaces an object in one request. Raises :class:`MediaError` when the backend would store the
    file under another name.
    """
    store = storage()
    if isinstance(store, FileSystemStorage):
        target = Path(store.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    for chunk in iter(lambda: data.read(1 << 20), b""):
                        out.write(chunk)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name
    content = ContentFile(data) if isinstance(data, bytes) else File(data)
    stored = store.save(name, content)
    if stored != name:
        store.delete(stored)
        raise MediaError(f"media {name}: the storage kept it as {stored!r}; set it to overwrite (file_overwrite)")
    return name


def save_file(name: str, path: Path | str) -> str:
    """Store the local file ``path`` under ``name`` (see :func:`save_bytes`); returns ``name``."""
    with open(path, "rb") as handle:
        return save_bytes(name, handle)


def open_stored(name: str) -> IO[bytes]:
    """Open a stored file for reading: a storage name, or an absolute path written by an older version.

    Raises :class:`MediaError` naming the file when it is not there.
    """
    if os.path.isabs(name):
        try:
            return open(name, "rb")
        except FileNotFoundError:
            raise MediaError(f"media {name}: no such file") from None
    store = storage()
    try:
        return store.open(name, "rb")
    except FileNotFoundError:
        raise MediaError(f"media {name}: no such file in the media storage") from None
    except OSError as exc:
        raise MediaError(f"media {name}: {exc}") from exc
    except Exception as exc:  # botocore's ClientError (404) and the like
        if not store.exists(name):
            raise MediaError(f"media {name}: no such file in the media storage") from None
        raise MediaError(f"media {name}: {type(exc).__name__}: {exc}") from exc


def read_bytes(name: str) -> bytes:
    """The whole content of a stored file (see :func:`open_stored`)."""
    with open_stored(name) as handle:
        return handle.read()


def walk(prefix: str) -> list[tuple[str, int]]:
    """Every stored file under the folder ``prefix``, as ``(name, size)``, sorted; ``[]`` when there is none."""
    store = storage()
    prefix = prefix.rstrip("/")
    found: list[tuple[str, int]] = []
    try:
        folders, files = store.listdir(prefix)
    except FileNotFoundError:
        return []
    for file in files:
        name = f"{prefix}/{file}"
        found.append((name, store.size(name)))
    for folder in folders:
        found += walk(f"{prefix}/{folder}")
    return sorted(found)


def delete_tree(prefix: str) -> tuple[int, int]:
    """Delete every stored file under the folder ``prefix`` (and, on a folder storage, the emptied folders).

    Returns ``(files, bytes)`` deleted.
    """
    store = storage()
    files = walk(prefix)
    for name, _size in files:
        store.delete(name)
    if isinstance(store, FileSystemStorage):
        root = Path(store.path(prefix))
        if root.is_dir():
            for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir_if_empty(folder)
            _rmdir_if_empty(root)
    return len(files), sum(size for _, size in files)


def remove_empty_folder(name: str) -> None:
    """On a folder storage, remove the folder ``name`` if nothing is left in it (object stores have none)."""
    store = storage()
    if isinstance(store, FileSystemStorage):
        _rmdir_if_empty(Path(store.path(name)))


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty, or already gone


def parent(name: str) -> str:
    """The folder part of a storage name (``checkpoints/2026/11/m/x.pt`` -> ``checkpoints/2026/11/m``)."""
    return str(PurePosixPath(name).parent)
