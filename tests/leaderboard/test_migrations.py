"""Data migrations of the leaderboard: 0010 (imported benchmarks have public labels)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_benchmarks_imported_before_the_flag_get_public_labels_and_campaign_ones_do_not():
    before = [("leaderboard", "0009_design_pair_design_labels_public_hidden_split")]
    after = [("leaderboard", "0010_design_fill_labels_public")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        dataset = apps.get_model("catalog", "Dataset").objects.create(name="old", kind="demo", image_root="/tmp")
        Benchmark = apps.get_model("leaderboard", "PreferenceBenchmark")
        for name, source in (("hp-fashioniq", "imported"), ("campaign-x", "campaign")):
            Benchmark.objects.create(name=name, version=1, source=source, dataset=dataset, fingerprint="f")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        flags = dict(apps.get_model("leaderboard", "PreferenceBenchmark").objects.values_list("name", "labels_public"))
        assert flags == {"hp-fashioniq": True, "campaign-x": False}
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
