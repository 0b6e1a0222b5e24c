"""Where a researcher gets the images a request file names.

A dataset whose images may be redistributed (``Dataset.images_shareable``: the generated demo, or one the admin
marks shareable) comes with a zip of its images, streamed as it is written (stored, not compressed: the images
are PNG/JPEG already), one member per image named as the request files name it (``<name><suffix>``). For the
others the request file says where the official release is and how its files are named: FashionIQ's images are
``<asin>.png``/``.jpg`` as its ``image_splits/split.<category>.<split>.json`` list them, CIRR's are NLVR2's
images as its ``image_splits/split.rc2.<split>.json`` map them (``dev-245-2-img1`` -> ``./dev/…png``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from hpbench.catalog.models import Dataset, Image

CHUNK = 1 << 20

OFFICIAL = {
    "fashioniq": {
        "where": "FashionIQ's official release: https://github.com/XiaoxiaoGuo/fashion-iq (images by ASIN)",
        "names": "each name is an ASIN as in image_splits/split.<category>.<split>.json; its file is "
                 "images/<name>.png (or .jpg) in the release",
    },
    "cirr": {
        "where": "CIRR's images are NLVR2's: https://github.com/lil-lab/nlvr (request the raw images there); "
                 "CIRR: https://github.com/Cuberick-Orion/CIRR",
        "names": "each name is a CIRR image name as in cirr/image_splits/split.rc2.<split>.json, which maps it to "
                 "its NLVR2 file (e.g. dev-245-2-img1 -> ./dev/…/dev-245-2-img1.png)",
    },
}


def images_archive_url(dataset: Dataset) -> str:
    return f"/api/leaderboard/requests/images/{dataset.name}"


def images_source(dataset: Dataset) -> dict[str, Any]:
    """The ``images`` block of a request file: the platform's archive, or where the official images are."""
    if dataset.images_shareable:
        return {"archive": images_archive_url(dataset),
                "names": "each image is the archive member <name> plus its file suffix (e.g. <name>.png)"}
    return {"archive": None, **OFFICIAL.get(dataset.kind, OFFICIAL["fashioniq"])}


class _Sink:
    """A write-only, non-seekable file that keeps what was written until it is taken (zipfile then writes data
    descriptors after each member instead of seeking back)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.written = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def images_archive_stream(dataset: Dataset) -> Iterator[bytes]:
    """The zip of the dataset's images, yielded about a MiB at a time; files missing on disk are skipped (named
    in ``MISSING.txt`` at the end). Only for a shareable dataset (the caller checks)."""
    root = Path(dataset.image_root).resolve()
    sink = _Sink()
    missing: list[str] = []
    rows = Image.objects.filter(dataset=dataset).order_by("name").values_list("name", "file_path")
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[call-overload]
        for name, file_path in rows.iterator(chunk_size=2000):
            path = (root / file_path).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                missing.append(name)
                continue
            member = f"{PurePosixPath(name).name}{path.suffix.lower()}"
            with path.open("rb") as source, archive.open(member, "w", force_zip64=path.stat().st_size > 2**31) as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    if sink.parts:
                        yield sink.take()
            yield sink.take()
        if missing:
            archive.writestr("MISSING.txt", "\n".join(missing) + "\n")
    yield sink.take()
