"""Fixtures for the leaderboard: the real HP-FashionIQ file, a FashionIQ dataset naming its images."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpbench.catalog.models import Dataset, Image

ROOT = Path(__file__).resolve().parents[2]
HPFIQ = (ROOT / ".." / "shared" / "data" / "hp-fashioniq" / "hpfiq.json").resolve()


@pytest.fixture(scope="session")
def hpfiq_path() -> Path:
    if not HPFIQ.exists():
        pytest.skip(f"the released HP-FashionIQ file is not at {HPFIQ} (see shared/data/hp-fashioniq/SOURCE.md)")
    return HPFIQ


@pytest.fixture(scope="session")
def hpfiq_questions(hpfiq_path):
    from hpbench.leaderboard.hpfiq import load_questions

    return load_questions(hpfiq_path)


def make_images(dataset: Dataset, names: dict[str, str]) -> dict[str, int]:
    Image.objects.bulk_create(
        [Image(dataset=dataset, name=n, category=c, split="val", file_path=f"{c}/{n}.png") for n, c in names.items()],
        batch_size=2000,
    )
    return dict(Image.objects.filter(dataset=dataset).values_list("name", "id"))


@pytest.fixture
def fiq_dataset(db, tmp_path) -> Dataset:
    return Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=str(tmp_path))


@pytest.fixture
def fiq_with_hpfiq_images(fiq_dataset, hpfiq_questions) -> Dataset:
    """A FashionIQ dataset holding an Image row (no pixels) for every name the real file lists."""
    from hpbench.leaderboard.hpfiq import image_names

    make_images(fiq_dataset, image_names(hpfiq_questions))
    return fiq_dataset
