"""Who a browser annotates as (annotate/identity.py): a signed cookie, no session, nothing forgeable."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client

from annotate import identity
from annotate.models import Annotator, Assignment, Vote
from tests.annotate.conftest import enter, make_campaign, next_task, post_vote

pytestmark = pytest.mark.django_db


def forge(client, value: dict) -> None:
    """Replace the browser's cookie with ``value`` in the cookie's format, signed with a key the server lacks."""
    signer = signing.TimestampSigner(key="not the server's key", salt=identity.COOKIE + "annotate.identity")
    client.cookies[identity.COOKIE] = signer.sign(json.dumps(value, separators=(",", ":")))


def test_a_crowd_worker_annotates_without_a_session(csrf_client, world):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    vote = post_vote(csrf_client, token, lease=lease)
    assert vote.status_code == 201
    assert Vote.objects.get().annotator == Annotator.objects.get()
    # Nothing for the hot path to look up in the database or a cache: the cookie says who is asking.
    assert not Session.objects.exists() and "sessionid" not in csrf_client.cookies


def test_a_browser_remembers_each_campaign_it_entered(csrf_client, world):
    first, second = make_campaign(world), make_campaign(world)
    token = enter(csrf_client, first)
    enter(csrf_client, second, pid="PID0002")
    assert next_task(csrf_client, first, token).status_code == 200
    assert next_task(csrf_client, second, token).status_code == 200
    assert set(Annotator.objects.values_list("campaign__slug", flat=True)) == {first.slug, second.slug}


def test_a_forged_or_altered_cookie_counts_as_no_annotator(csrf_client, world):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    mine = Annotator.objects.get()
    enter(Client(), campaign, pid="PID0002")
    theirs = Annotator.objects.exclude(pk=mine.pk).get()

    genuine = csrf_client.cookies[identity.COOKIE].value
    assert f'"{campaign.slug}":{mine.pk}}}' in genuine
    csrf_client.cookies[identity.COOKIE] = genuine.replace(f":{mine.pk}}}", f":{theirs.pk}}}")
    altered = next_task(csrf_client, campaign, token)
    assert altered.status_code == 403 and "no annotator in this browser" in altered.json()["detail"]

    forge(csrf_client, {campaign.slug: theirs.pk})
    assert next_task(csrf_client, campaign, token).status_code == 403
    assert not Assignment.objects.filter(annotator=theirs).exists()


def test_an_expired_cookie_counts_as_no_annotator(csrf_client, world, settings):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    settings.SESSION_COOKIE_AGE = -1  # every cookie issued is now older than the age allowed
    assert next_task(csrf_client, campaign, token).status_code == 403
