"""Data migrations of catalog 0007 (a listing per existing image) and leaderboard 0010 (each stored pair's category)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_existing_images_get_their_listing_and_existing_pairs_their_category():
    executor = MigrationExecutor(connection)
    before = [("catalog", "0005_job_claims_heartbeat"), ("leaderboard", "0012_heldout_fill")]
    after = [("catalog", "0007_catzoo_fill_image_listings"), ("leaderboard", "0014_catzoo_fill_pair_category")]
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Dataset, Image, Query = (apps.get_model("catalog", name) for name in ("Dataset", "Image", "Query"))
        Benchmark, Pair = (apps.get_model("leaderboard", name) for name in ("PreferenceBenchmark", "BenchmarkPair"))
        dataset = Dataset.objects.create(name="old", kind="fashioniq", image_root="/tmp")
        images = [
            Image.objects.create(dataset=dataset, name=f"i{n}", category=c, split=s, file_path=f"i{n}.png")
            for n, (c, s) in enumerate([("dress", "val"), ("shirt", "val"), ("toptee", "test")])
        ]
        query = Query.objects.create(dataset=dataset, key="q", split="val", category="toptee", reference=images[0],
                                     target=images[1], captions=[])
        benchmark = Benchmark.objects.create(name="b", version=1, source="imported", dataset=dataset, fingerprint="f")
        Pair.objects.create(benchmark=benchmark, position=0, query=query, reference=images[0], text="t",
                            preference=1)
        Pair.objects.create(benchmark=benchmark, position=1, reference=images[1], text="t", preference=2)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        listings = apps.get_model("catalog", "ImageListing").objects.order_by("image_id")
        assert list(listings.values_list("image_id", "dataset_id", "category", "split")) == [
            (images[0].pk, dataset.pk, "dress", "val"), (images[1].pk, dataset.pk, "shirt", "val"),
            (images[2].pk, dataset.pk, "toptee", "test"),
        ]
        pairs = apps.get_model("leaderboard", "BenchmarkPair").objects.order_by("position")
        assert list(pairs.values_list("category", flat=True)) == ["toptee", "shirt"]  # the query's, else the image's
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
