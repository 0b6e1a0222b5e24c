"""The Hugging Face folder's Image columns: the files' bytes beside the names, read back with ``datasets``."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image as PILImage

from hpbench.catalog.models import Dataset
from hpbench.exports import selectors, services, writers
from hpbench.exports.selectors import params_parse

pytestmark = pytest.mark.django_db


@pytest.fixture
def world_with_files(export_world, tmp_path):
    """The export world's images as real JPEG files (each its own colour), one file left missing."""
    root = tmp_path / "images"
    root.mkdir()
    Dataset.objects.filter(pk=export_world.dataset.pk).update(image_root=str(root))
    colours = {}
    for image in export_world.images.values():
        i = int(image.name[-4:])  # the image's index in the export world
        if i == 1:  # the first query's target: no file
            continue
        colours[image.name] = (10 * i % 256, 255 - 10 * i % 256, 40)
        PILImage.new("RGB", (12 + i, 16), colours[image.name]).save(root / image.file_path, quality=100)
    return export_world, root, colours


def _export(world, tmp_path):
    params = params_parse(campaigns=[world.campaign.slug], include_excluded=True)
    out = tmp_path / "hf"
    return services.export_write(params=params, fmt="hf", out=out, chunk_size=3), out


def test_image_columns_hold_the_files_and_datasets_decodes_them(world_with_files, tmp_path, monkeypatch):
    world, root, colours = world_with_files
    summary, out = _export(world, tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=str(out / writers.HF_DATA_FILE), split="train")
    assert isinstance(ds.features["reference"], datasets.Image)
    assert isinstance(ds.features["set_a"].feature, datasets.Image)
    assert ds.num_rows == summary.rows == 8
    for row in ds:
        reference = row["reference"]
        assert reference.size == (12 + int(row["reference_image"][-4:]), 16)
        assert reference.getpixel((0, 0)) == pytest.approx(colours[row["reference_image"]], abs=3)
        assert [img.size[0] - 12 for img in row["set_a"]] == [int(n[-4:]) for n in row["set_a_images"]]
        if row["target_image"] == "B00IMG0001":
            assert row["target"] is None  # its file is missing
        else:
            assert row["target"].size == (12 + int(row["target_image"][-4:]), 16)
    raw = pq.read_table(out / writers.HF_DATA_FILE).column("reference")[0].as_py()
    assert raw["path"].endswith(".jpg") and raw["bytes"] == (root / raw["path"]).read_bytes()


def test_the_card_declares_the_image_features_and_the_folder_loads_by_its_card(world_with_files, tmp_path, monkeypatch):
    world, _root, _colours = world_with_files
    _summary, out = _export(world, tmp_path)
    header = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    features = header["dataset_info"]["features"]
    assert {"name": "reference", "dtype": "image"} in features
    assert {"name": "set_b", "sequence": "image"} in features
    assert header["dataset_info"]["splits"][0]["num_bytes"] > 0  # datasets reads the split sizes whole
    metadata = json.loads(pq.read_schema(out / writers.HF_DATA_FILE).metadata[b"huggingface"])
    assert metadata["info"]["features"]["target"] == {"_type": "Image"}
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(out), split="train")
    assert isinstance(ds.features["set_b"].feature, datasets.Image) and ds.num_rows == 8


def test_each_file_is_read_once_per_export(world_with_files, tmp_path):
    world, _root, _colours = world_with_files
    calls: list[set[str]] = []

    def counting(dataset, names):
        calls.append(set(names))
        return selectors.image_files(dataset, names)

    writer = writers.HfFolderRows(tmp_path / "hf", selectors.COLUMNS["votes"], images=counting)
    for rows in selectors.rows_iter(params_parse(campaigns=[world.campaign.slug], include_excluded=True), chunk_size=2):
        writer.write(rows)
    writer.close()
    asked = [name for names in calls for name in names]
    assert asked
    assert len(asked) == len(set(asked))  # never asked twice


def test_a_thumbnail_is_a_real_image(world_with_files, tmp_path):
    world, _root, _colours = world_with_files
    _summary, out = _export(world, tmp_path)
    cell = pq.read_table(out / writers.HF_DATA_FILE).column("set_b")[0].as_py()[0]
    assert PILImage.open(io.BytesIO(cell["bytes"])).format == "JPEG"
