"""The staff export page's preview (row count and first rows, nothing exported) and its date fields."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.test import Client

from hpbench.exports.models import ExportJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def _cells(html: str) -> list[list[str]]:
    table = html[html.index('class="export-table"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [re.findall(r"<td>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_preview_shows_the_row_count_and_the_first_rows_and_exports_nothing(staff_client, export_world):
    with mock.patch("hpbench.celery.app.send_task") as send:
        response = staff_client.post(
            "/exports/",
            {
                "format": "csv",
                "level": "votes",
                "campaigns": [export_world.campaign.slug],
                "action": "preview",
                "include_gold": "on",
            },
        )
    assert response.status_code == 200
    html = response.content.decode()
    counted = [v for v in export_world.votes if v.comparison.campaign_id == export_world.campaign.pk]
    counted = [v for v in counted if not v.excluded and not v.annotator.flagged]
    assert re.search(r"data-preview-total>(\d+)<", html).group(1) == str(len(counted)) == "7"
    rows = _cells(html)
    assert len(rows) == 7
    assert [int(r[0]) for r in rows] == sorted(v.pk for v in counted)  # vote_id, first column
    assert ExportJob.objects.count() == 0 and not send.called


def test_the_preview_covers_all_campaigns_by_default_and_says_when_nothing_matches(staff_client, export_world):
    response = staff_client.post("/exports/", {"format": "parquet", "include_gold": "on", "action": "preview"})
    assert len(_cells(response.content.decode())) == 8  # every counted vote of both campaigns
    response = staff_client.post("/exports/", {"format": "parquet", "action": "preview"})  # gold left out
    assert "data-preview-total>6<" in response.content.decode()
    response = staff_client.post(
        "/exports/", {"format": "parquet", "level": "votes", "since": "2030-01-01", "action": "preview"}
    )
    html = response.content.decode()
    assert "data-preview-total>0<" in html and "No row matches these filters." in html


def test_the_date_fields_are_date_inputs_bounded_by_the_votes(staff_client, export_world):
    html = staff_client.get("/exports/").content.decode()
    since = re.search(r'<input type="date" id="since"[^>]*>', html).group(0)
    assert 'min="2026-03-10"' in since and 'max="2026-03-13"' in since
    assert "votes were cast from 2026-03-10 to 2026-03-13" in html


def test_the_preview_stops_at_its_limit(export_world):
    from hpbench.exports.selectors.params import params_parse
    from hpbench.exports.selectors.rows import rows_preview

    total, columns, rows = rows_preview(params_parse(include_gold=True), limit=3)
    assert total == 8 and len(rows) == 3 and columns[0] == "vote_id"



def test_a_date_past_the_last_day_is_a_form_error_not_a_500(staff_client, export_world):
    with mock.patch("hpbench.celery.app.send_task") as send:
        response = staff_client.post("/exports/", {"format": "csv", "level": "votes", "until": "9999-12-31",
                                                   "campaigns": [export_world.campaign.slug], "action": "preview"})
        assert response.status_code == 400 and "until: 9999-12-31 is out of range" in response.content.decode()
        response = staff_client.post("/exports/", {"format": "csv", "level": "votes", "until": "9999-12-31",
                                                   "campaigns": [export_world.campaign.slug]})
        assert response.status_code == 400 and "is out of range" in response.content.decode()
    assert not send.called and not ExportJob.objects.exists()
