"""Bounds on a ``torch.save`` zip archive, read from its central directory before anything is decompressed.

``torch.load`` inflates each member of the archive into memory at the size the member declares. ``torch.save``
stores members uncompressed (the archive is about as large as its contents), so an archive whose members
declare far more than the file holds is a compression bomb: a 2 MiB file can declare gigabytes of zeros.
:func:`check_zip_archive` refuses one before it is loaded; it needs only the standard library (the web process
runs it on uploads without importing torch) and is told its limit (no Django here).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

#: Members may declare at most this many times the archive's own size (``torch.save`` writes them stored: 1x).
MAX_RATIO = 4
#: The largest central directory read (a checkpoint of 100,000 tensors needs about 10 MiB).
MAX_DIRECTORY_BYTES = 32 * 1024**2


class ArchiveError(ValueError):
    """The archive is refused; the message names the file and the bound it breaks."""


def check_zip_archive(file: str | Path | IO[bytes], *, name: str, max_unpacked_bytes: int | None) -> int:
    """Refuse (:class:`ArchiveError`) a zip archive whose central directory is over :data:`MAX_DIRECTORY_BYTES`,
    or whose members together declare more than ``max_unpacked_bytes`` (``None``: no absolute limit) or more than
    :data:`MAX_RATIO` times the archive's size, or that is not a zip archive. Reads the end records and the
    central directory only. Returns the declared total; leaves a file object at position 0."""
    handle = open(file, "rb") if isinstance(file, str | Path) else file  # noqa: SIM115 (closed below)
    try:
        handle.seek(0, 2)
        size = handle.tell()
        try:
            end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # the stdlib's end-record reader
        except OSError:
            end = None
        if not end:
            raise ArchiveError(f"file {name!r}: not a zip archive (no end of central directory)")
        directory = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
        if directory > MAX_DIRECTORY_BYTES:
            raise ArchiveError(f"file {name!r}: zip directory of {directory} bytes is over the limit of "
                               f"{MAX_DIRECTORY_BYTES} bytes")
        handle.seek(0)
        try:
            with zipfile.ZipFile(handle) as archive:
                declared = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ArchiveError(f"file {name!r}: not a readable zip archive ({exc})") from None
        bound = MAX_RATIO * size if max_unpacked_bytes is None else min(max_unpacked_bytes, MAX_RATIO * size)
        if declared > bound:
            raise ArchiveError(f"file {name!r}: its members unpack to {declared} bytes, over the limit of {bound} "
                               f"bytes ({MAX_RATIO} times the file's {size} bytes"
                               + (f", at most {max_unpacked_bytes}" if max_unpacked_bytes is not None else "")
                               + "; torch.save stores them uncompressed)")
        return declared
    finally:
        if isinstance(file, str | Path):
            handle.close()
        else:
            handle.seek(0)
