"""Bounds on what a researcher's upload may cost the web process: bytes on the wire, bytes on disk, header parsing.

- :func:`upload_limit_middleware` refuses a request whose ``Content-Length`` is over its path's limit
  (:mod:`hpbench.bodies`; ``hpbench.wsgi`` does so before Django too) with a 413 JSON answer before a byte of
  the body is read, and turns an upload the handler cut short into the same.
- :class:`CappedUploadHandler` (first in ``FILE_UPLOAD_HANDLERS``) counts the bytes of each uploaded file as
  they stream in and stops the upload past the path's file limit (``HPBENCH_MAX_CHECKPOINT_BYTES`` on the
  upload paths): nothing larger reaches /tmp.
- :func:`check_checkpoint_upload` checks a checkpoint's format from its first bytes; a safetensors header is
  parsed only when it is at most ``HPBENCH_MAX_SAFETENSORS_HEADER_BYTES`` long and its structure (nesting
  depth, number of containers and items), counted without building it, is that of a real header.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse

from hpbench import bodies

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
#: A safetensors header is an object of tensors, each an object with a ``shape`` and ``data_offsets`` array:
#: nesting depth 3. Per tensor about 3 containers and 8 items; the caps allow 200,000 tensors.
MAX_HEADER_DEPTH = 3
MAX_HEADER_CONTAINERS = 600_000
MAX_HEADER_ITEMS = 2_000_000
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


class UploadError(ValueError):
    """An upload is refused; the message names the file and what is wrong."""


class UploadTooLarge(RequestDataTooBig):
    """An uploaded file passed the size limit while it streamed in."""


def upload_paths() -> list[str]:
    """Paths (PATH_INFO, exact) of the endpoints that take checkpoint uploads."""
    return bodies.upload_paths()


def max_checkpoint_bytes() -> int:
    return int(settings.HPBENCH_MAX_CHECKPOINT_BYTES)


def max_request_bytes() -> int:
    """The largest request body a checkpoint upload may have."""
    return max_checkpoint_bytes() + bodies.FORM_OVERHEAD_BYTES


def _too_large(detail: str, limit: int) -> JsonResponse:
    response = JsonResponse({"detail": detail, "limit_bytes": limit}, status=413)
    response["Content-Length"] = str(len(response.content))  # readable before the server looks at the body
    return response


def upload_limit_middleware(get_response):
    """413 JSON for a request body over its path's limit (:mod:`hpbench.bodies`): by its Content-Length, before
    the body is read; or when :class:`CappedUploadHandler` stopped it while it streamed."""

    def middleware(request: HttpRequest) -> HttpResponse:
        # Nothing of the body is read here (a proxy in front should refuse it too: nginx's client_max_body_size;
        # WSGI lets no application close the connection itself).
        refused = bodies.refusal(request.META)
        if refused is not None:
            status, body = refused
            response = JsonResponse(body, status=status)
            response["Content-Length"] = str(len(response.content))
            return response
        response = get_response(request)
        stopped = getattr(request, "_hpbench_upload_too_large", None)
        if stopped:
            for handler in getattr(request, "_upload_handlers", None) or []:
                handler.upload_interrupted()  # the temporary-file handler deletes its partial file
            response = _too_large(stopped, bodies.file_limit(request.path_info))
        return response

    return middleware


class CappedUploadHandler(FileUploadHandler):
    """Stops an upload as soon as one file, or all files of the request together, pass the path's file limit
    (the checkpoint limit on the upload paths, ``DATA_UPLOAD_MAX_MEMORY_SIZE`` elsewhere).

    The files received so far are closed (temporary files deleted) and the request is marked so that
    :func:`upload_limit_middleware` answers 413.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = bodies.file_limit(request.path_info) if request is not None else max_checkpoint_bytes()
        self.file_bytes = 0
        self.total_bytes = 0

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.file_bytes = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.file_bytes += len(raw_data)
        self.total_bytes += len(raw_data)
        if self.file_bytes > self.limit or self.total_bytes > self.limit:
            message = (f"file {self.file_name!r}: over the limit of {self.limit} bytes "
                       "(the upload was stopped when it passed the limit)")
            if self.request is not None:
                self.request._hpbench_upload_too_large = message  # type: ignore[attr-defined]
            raise UploadTooLarge(message)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler stores the file


def check_safetensors_header(raw: bytes, *, name: str) -> dict:
    """Parse a safetensors JSON header after checking its structure without building it.

    Raises :class:`UploadError` for a header nested deeper than a real one, with too many containers or
    items, that is not JSON, or that is not an object of tensor entries.
    """
    skeleton = _JSON_STRING.sub(b'""', raw)  # strings can hold any bracket; count outside them only
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    if containers > MAX_HEADER_CONTAINERS:
        raise UploadError(f"file {name!r}: not a safetensors file (header has {containers} arrays/objects, "
                          f"over the limit of {MAX_HEADER_CONTAINERS})")
    items = skeleton.count(b",")
    if items > MAX_HEADER_ITEMS:
        raise UploadError(f"file {name!r}: not a safetensors file (header has over {MAX_HEADER_ITEMS} items)")
    depth = 0
    for match in _BRACKETS.finditer(skeleton):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > MAX_HEADER_DEPTH:
            raise UploadError(f"file {name!r}: not a safetensors file (header nested deeper than "
                              f"{MAX_HEADER_DEPTH} levels)")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UploadError(f"file {name!r}: not a safetensors file (header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise UploadError(f"file {name!r}: not a safetensors file (header is not an object)")
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise UploadError(f"file {name!r}: not a safetensors file (header entry {key[:80]!r} is not a tensor "
                              "with dtype, shape and data_offsets)")
    return header


def check_folder_upload(file: UploadedFile, *, family: str, required: tuple[str, ...]) -> dict[str, str]:
    """Refuse (``UploadError``) an archive of a folder-shaped checkpoint by its directory alone: a .zip or .tar
    within the checkpoint limit whose members (at most ``models_zoo.archives.MAX_FOLDER_MEMBERS``, no links, no
    absolute or ``..`` paths) declare at most the limit and hold the family's ``required`` files. Nothing is
    decompressed. Returns ``{path in the folder: member}``; leaves the file at position 0."""
    from models_zoo.archives import ARCHIVE_SUFFIXES, ArchiveError, check_folder_archive

    name = file.name or ""
    if Path(name).suffix.lower() not in ARCHIVE_SUFFIXES:
        raise UploadError(f"file {name!r}: the {family} family's checkpoint is a folder with "
                          f"{' and '.join(required)}: upload the folder as one .zip or .tar archive")
    limit = max_checkpoint_bytes()
    if file.size is None or file.size > limit:
        raise UploadError(f"file {name!r}: {file.size} bytes is over the limit of {limit} bytes")
    try:
        return check_folder_archive(file, name=name, required=required, max_unpacked_bytes=limit)
    except ArchiveError as exc:
        raise UploadError(str(exc)) from None


def check_checkpoint_upload(file: UploadedFile) -> None:
    """Refuse (``UploadError``) a checkpoint upload by name, size and first bytes: a safetensors file with a
    bounded, well-formed header, or a ``torch.save`` zip archive whose members do not unpack past the
    checkpoint limit or 4 times the file's size (``models_zoo.archives``; legacy pickles are refused; nothing
    is ever unpickled here). Leaves the file at position 0."""
    name = file.name or ""
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise UploadError(f"file {name!r}: expected a .safetensors file or an official .pt/.pth layout")
    limit = max_checkpoint_bytes()
    if file.size is None or file.size > limit:
        raise UploadError(f"file {name!r}: {file.size} bytes is over the limit of {limit} bytes")
    if file.size == 0:
        raise UploadError(f"file {name!r}: empty")
    file.seek(0)
    head = file.read(8)
    if suffix == ".safetensors":
        # A safetensors file starts with the length of its JSON header (little-endian u64).
        size = int.from_bytes(head, "little") if len(head) == 8 else -1
        header_limit = int(settings.HPBENCH_MAX_SAFETENSORS_HEADER_BYTES)
        if size <= 0 or size > file.size - 8:
            raise UploadError(f"file {name!r}: not a safetensors file (bad header length)")
        if size > header_limit:
            raise UploadError(f"file {name!r}: safetensors header of {size} bytes is over the limit of "
                              f"{header_limit} bytes")
        check_safetensors_header(file.read(size), name=name)
    elif not head.startswith(b"PK"):
        # torch.save's format is a zip archive; legacy pickles are refused (never unpickled anyway).
        raise UploadError(f"file {name!r}: not a torch.save zip archive (legacy or foreign format)")
    else:
        from models_zoo.archives import ArchiveError, check_zip_archive  # standard library only: no torch

        try:
            check_zip_archive(file, name=name, max_unpacked_bytes=limit)
        except ArchiveError as exc:
            raise UploadError(str(exc)) from None
    file.seek(0)
