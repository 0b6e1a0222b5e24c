"""The image files of a dataset that an export embeds (the Hugging Face folder's Image columns)."""

from __future__ import annotations

from hpbench.catalog.models import Image


def image_files(dataset: str, names: set[str]) -> dict[str, tuple[str, bytes] | None]:
    """The files of images ``names`` of dataset ``dataset``: ``{name: (file name, bytes)}``, None for an image
    whose file is missing or lies outside the dataset's image root (the Hugging Face folder's Image columns)."""
    from pathlib import Path

    out: dict[str, tuple[str, bytes] | None] = {}
    rows = Image.objects.filter(dataset__name=dataset, name__in=names).values_list(
        "name", "file_path", "dataset__image_root"
    )
    for name, file_path, image_root in rows:
        root = Path(image_root).resolve()
        path = (root / file_path).resolve()
        out[name] = (path.name, path.read_bytes()) if path.is_relative_to(root) and path.is_file() else None
    return out
