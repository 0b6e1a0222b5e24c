"""Bounds on a ``torch.save`` zip archive, read from its central directory before anything is decompressed.

``torch.load`` inflates each member of the archive into memory at the size the member declares. ``torch.save``
stores members uncompressed (the archive is about as large as its contents), so an archive whose members
declare far more than the file holds is a compression bomb: a 2 MiB file can declare gigabytes of zeros.
:func:`check_zip_archive` refuses one before it is loaded; it needs only the standard library (the web process
runs it on uploads without importing torch) and is told its limit (no Django here).
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath
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


#: A folder-shaped checkpoint archive holds at most this many members (the demo's folder has 4).
MAX_FOLDER_MEMBERS = 64
ARCHIVE_SUFFIXES = (".zip", ".tar")


def _member_problem(member: str) -> str:
    path = PurePosixPath(member)
    if member.startswith(("/", "\\")) or (len(member) > 1 and member[1] == ":"):
        return "an absolute path"
    if "\\" in member or any(part == ".." for part in path.parts):
        return "a path that leaves the folder ('..' or a backslash)"
    return ""


def check_folder_archive(file: IO[bytes], *, name: str, required: tuple[str, ...], max_unpacked_bytes: int,
                         max_members: int = MAX_FOLDER_MEMBERS) -> dict[str, str]:
    """Check a zip or tar archive of a checkpoint folder from its directory alone (nothing is decompressed).

    Refuses (:class:`ArchiveError`) an archive that is neither, has more than ``max_members`` members, declares
    more than ``max_unpacked_bytes`` in all (zip: also :data:`MAX_RATIO` times its size, as
    :func:`check_zip_archive`), holds a link, a device or an absolute or ``..`` path, or lacks one of the
    ``required`` files, either at the top or inside one top folder (``demo-qure/config.json``).
    Returns ``{relative path in the folder: member name}`` for the regular files; leaves ``file`` at position 0.
    """
    suffix = PurePosixPath(name).suffix.lower()
    members: list[tuple[str, int]] = []
    try:
        if suffix == ".zip":
            check_zip_archive(file, name=name, max_unpacked_bytes=max_unpacked_bytes)
            with zipfile.ZipFile(file) as archive:
                infos = archive.infolist()
                if len(infos) > max_members:
                    raise ArchiveError(f"file {name!r}: {len(infos)} members, over the limit of {max_members}")
                for info in infos:
                    if info.is_dir():
                        continue
                    if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000):  # a symlink or device
                        raise ArchiveError(f"file {name!r}: member {info.filename!r} is not a regular file")
                    members.append((info.filename, info.file_size))
        elif suffix == ".tar":
            file.seek(0)
            with tarfile.open(fileobj=file, mode="r:") as tar:  # uncompressed: headers only are read
                count = 0
                for entry in tar:
                    count += 1
                    if count > max_members:
                        raise ArchiveError(f"file {name!r}: over {max_members} members")
                    if entry.isdir():
                        continue
                    if not entry.isfile():
                        raise ArchiveError(f"file {name!r}: member {entry.name!r} is not a regular file "
                                           "(links and devices are refused)")
                    members.append((entry.name, entry.size))
        else:
            raise ArchiveError(f"file {name!r}: expected a .zip or .tar archive of the checkpoint folder")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"file {name!r}: not a readable {suffix[1:]} archive ({exc})") from None
    finally:
        file.seek(0)
    total = 0
    for member, size in members:
        if problem := _member_problem(member):
            raise ArchiveError(f"file {name!r}: member {member!r} has {problem}")
        total += size
    if total > max_unpacked_bytes:
        raise ArchiveError(f"file {name!r}: its members unpack to {total} bytes, over the limit of "
                           f"{max_unpacked_bytes} bytes")
    names = [PurePosixPath(m).parts for m, _ in members]
    tops = {parts[0] for parts in names if len(parts) > 1}
    at_top = any(len(parts) == 1 for parts in names)
    strip = 1 if len(tops) == 1 and not at_top else 0  # one top folder: its contents are the checkpoint
    folder = {str(PurePosixPath(*parts[strip:])): member for parts, (member, _) in zip(names, members, strict=True)}
    missing = [f for f in required if f not in folder]
    if missing:
        raise ArchiveError(f"file {name!r}: expected a folder with {' and '.join(required)}; missing "
                           f"{', '.join(missing)} (found: {', '.join(sorted(folder)[:10]) or 'no files'})")
    return folder


def copy_archive_member(file: IO[bytes], *, name: str, member: str, target: IO[bytes], limit: int) -> int:
    """Copy one member of a zip or tar archive checked by :func:`check_folder_archive` into ``target`` in 1 MiB
    chunks, never past ``limit`` bytes (:class:`ArchiveError` then). Returns the bytes copied."""

    def copy(handle: IO[bytes]) -> int:
        copied = 0
        while chunk := handle.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                raise ArchiveError(f"file {name!r}: member {member!r} unpacks past {limit} bytes")
            target.write(chunk)
        return copied

    file.seek(0)
    try:
        if PurePosixPath(name).suffix.lower() == ".zip":
            with zipfile.ZipFile(file) as archive, archive.open(member) as handle:
                return copy(handle)
        with tarfile.open(fileobj=file, mode="r:") as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise ArchiveError(f"file {name!r}: member {member!r} is not a regular file")
            return copy(extracted)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"file {name!r}: member {member!r} unreadable ({exc})") from None
    finally:
        file.seek(0)
