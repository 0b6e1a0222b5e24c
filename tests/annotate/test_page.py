"""The voting page's server side: ``/annotate/<slug>/`` (frontend/views/annotate.py)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.sessions.models import Session
from django.test import RequestFactory

from annotate import identity
from annotate.models import Annotator, Campaign
from tests.browser.factory import SECRET_MODEL_DESCRIPTION, SECRET_MODEL_NAMES, build_page_campaign

pytestmark = pytest.mark.django_db

PROLIFIC = "?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=study42&SESSION_ID=sess7"


def page_config(html: str) -> dict:
    match = re.search(r'<script id="annotate-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page carries its JSON config"
    return json.loads(match.group(1))


def test_it_answers_404_for_an_unknown_campaign_with_the_friendly_page_even_in_debug(client, settings):
    settings.DEBUG = True
    response = client.get(f"/annotate/no-such-campaign/{PROLIFIC}")
    html = response.content.decode()
    assert response.status_code == 404
    assert "We could not find this study" in html
    assert "Django" not in html and "urlpatterns" not in html and "Traceback" not in html
    mistyped = client.get("/annotate/shirts study!/")
    assert mistyped.status_code == 404 and "We could not find this study" in mistyped.content.decode()


def test_it_shows_a_clear_page_for_a_closed_campaign(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path, status=Campaign.Status.CLOSED)
    response = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
    assert response.status_code == 410
    assert "This study has ended" in response.content.decode()
    assert not Annotator.objects.exists()


def test_it_shows_a_clear_page_for_a_draft_campaign(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path, status=Campaign.Status.DRAFT)
    response = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
    assert response.status_code == 403
    assert "This study is not open yet" in response.content.decode()
    assert not Annotator.objects.exists()


def test_it_asks_a_visitor_without_a_study_link_to_use_one_or_log_in(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path)
    response = client.get(f"/annotate/{built.campaign.slug}/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "We could not tell who you are" in html
    assert "/accounts/login/?next=/annotate/" in html
    assert not Annotator.objects.exists()


def test_it_refuses_a_malformed_prolific_id_with_the_reason(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path)
    response = client.get(f"/annotate/{built.campaign.slug}/?PROLIFIC_PID=a%20b%3Cscript%3E")
    assert response.status_code == 403
    assert "PROLIFIC_PID must be" in response.content.decode()
    assert "<script>" not in response.content.decode().split("</header>", 1)[1]


def test_it_enters_a_prolific_annotator_and_renders_the_page(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path, quota=3)
    response = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
    html = response.content.decode()

    assert response.status_code == 200
    annotator = Annotator.objects.get()
    assert annotator.source == Annotator.Source.PROLIFIC
    assert annotator.study_id == "study42" and annotator.session_id == "sess7"
    cookie = response.cookies[identity.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    request = RequestFactory().get("/")
    request.COOKIES[identity.COOKIE] = cookie.value
    assert identity.remembered(request) == {built.campaign.slug: annotator.pk}
    assert not Session.objects.exists()  # a crowd worker needs no session
    assert "csrftoken" in response.cookies
    assert response["Cache-Control"].startswith("max-age=0")
    config = page_config(html)
    assert config["nextUrl"] == f"/api/annotate/campaigns/{built.campaign.slug}/next"
    assert config["voteUrl"] == "/api/annotate/votes"
    assert config["quota"] == 3
    assert built.campaign.instructions in html
    assert "0 of 3" in html
    assert 'href="/leaderboard/"' not in html, "annotators do not get the site navigation"


def test_a_returning_annotator_resumes_the_same_pseudonym(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path)
    client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
    client.cookies.clear()
    client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}")
    assert Annotator.objects.count() == 1


def test_a_logged_in_user_enters_as_themselves(client, tmp_path, researcher):
    built = build_page_campaign(image_root=tmp_path)
    client.force_login(researcher)
    response = client.get(f"/annotate/{built.campaign.slug}/")
    assert response.status_code == 200
    assert Annotator.objects.get().user == researcher


def test_the_page_names_no_model_nor_the_campaign_name(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path)
    html = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}").content.decode()
    for secret in (*SECRET_MODEL_NAMES, SECRET_MODEL_DESCRIPTION, built.campaign.name):
        assert secret not in html
    for model in built.models:
        assert f"model={model.pk}" not in html and f'"model": {model.pk}' not in html


def test_it_shows_only_the_key_hints_of_the_options_the_campaign_asks(client, tmp_path):
    built = build_page_campaign(image_root=tmp_path, allow_tie=False, ask_ratings=False, ask_irrelevant=True)
    html = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}").content.decode()
    assert '<span data-if-option="tie" hidden>' in html
    assert '<span data-if-option="ratings" hidden>' in html
    assert '<span data-if-option="irrelevant">' in html


def test_the_first_screen_renders_the_admins_markdown_safely_and_shows_once(client, tmp_path):
    built = build_page_campaign(
        image_root=tmp_path,
        instructions="**Look closely** at the sleeves.\n\n<script>alert('x')</script>",
    )
    built.campaign.consent_text = "I agree to [the terms](https://example.org/terms)."
    built.campaign.save(update_fields=["consent_text"])
    html = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}").content.decode()
    body = html.split("</header>", 1)[1]
    assert "<strong>Look closely</strong>" in body
    assert "<script>alert" not in html and "&lt;script&gt;alert" in body
    assert '<a href="https://example.org/terms">the terms</a>' in body
    assert 'id="ann-consent"' in body
    assert "changed as requested, with everything else kept" in body
    config = page_config(html)
    assert config["onboarding"] is True and config["consent"] is True
    assert not re.search(r"<[^>]+\son[a-z]+=", html), "no inline event handlers (the CSP forbids them)"

    annotator = Annotator.objects.get()
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/api/annotate/campaigns/{built.campaign.slug}/onboarded",
        json.dumps({"consent": True}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    annotator.refresh_from_db()
    assert annotator.onboarded_at is not None
    again = client.get(f"/annotate/{built.campaign.slug}/{PROLIFIC}").content.decode()
    assert page_config(again)["onboarding"] is False
