"""The ``export_preferences`` management command."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("export_preferences", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_writes_the_file_and_prints_a_summary(export_world, tmp_path):
    out = tmp_path / "v.parquet"
    summary = json.loads(
        run("--format", "parquet", "--out", str(out), "--campaign", export_world.campaign.slug, "--no-gold", "--json")
    )
    assert summary["rows"] == pq.read_metadata(out).num_rows == 5
    text = run("--format", "csv", "--out", str(tmp_path / "c.csv"), "--level", "comparisons")
    assert text.startswith("Wrote 5 comparisons rows as csv")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaign", "ghost"], "no campaign 'ghost'"),
        (["--benchmark", "ghost:2"], "no benchmark 'ghost:2'"),
        (["--since", "10/03/2026"], "since: '10/03/2026' is not a date"),
    ],
)
def test_it_names_what_is_wrong(export_world, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run("--format", "jsonl", "--out", str(tmp_path / "x.jsonl"), *args)
