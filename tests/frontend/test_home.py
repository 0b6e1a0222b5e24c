"""The home page's ways in: the try-it campaign, the leaderboard and the submit page."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from django.test import Client, override_settings

from annotate.models import Annotator, Campaign
from tests.browser.factory import build_page_campaign

pytestmark = pytest.mark.django_db


def _try_link(html: str) -> str | None:
    match = re.search(r'<a class="home-card" href="([^"]+)"><strong>Try the voting page', html)
    return htmllib.unescape(match.group(1)) if match else None


@override_settings(HPBENCH_TRY_CAMPAIGN="try-it-here")
def test_an_anonymous_visitor_can_try_the_open_try_it_campaign(client, tmp_path):
    build_page_campaign(image_root=tmp_path, slug="try-it-here")
    first = _try_link(client.get("/").content.decode())
    assert first and first.startswith("/annotate/try-it-here/?PROLIFIC_PID=try-")
    assert Client().get(first).status_code == 200  # the voting page takes the link as it is
    second = _try_link(Client().get("/").content.decode())
    assert second != first  # each visitor is a new participant
    Client().get(second)
    assert Annotator.objects.filter(campaign__slug="try-it-here").count() == 2


@override_settings(HPBENCH_TRY_CAMPAIGN="try-it-here")
def test_no_try_link_while_the_campaign_is_not_open(client, tmp_path):
    build_page_campaign(image_root=tmp_path, slug="try-it-here", status=Campaign.Status.CLOSED)
    assert _try_link(client.get("/").content.decode()) is None


def test_the_home_page_links_the_leaderboard_and_the_submit_page(client):
    from django.urls import Resolver404, resolve

    html = client.get("/").content.decode()
    assert '<a class="home-card" href="/leaderboard/">' in html
    try:
        resolve("/submit/")
        submit = "/submit/"
    except Resolver404:
        submit = "/submissions/"
    assert f'<a class="home-card" href="{submit}">' in html
