"""The campaign's first screen (annotate/onboarding.py): safe Markdown, consent, shown once per annotator."""

from __future__ import annotations

import json

import pytest

from annotate import onboarding
from annotate.errors import ConsentRequired
from annotate.models import Annotator
from annotate.services.entry import annotator_enter
from annotate.services.next_task import assignment_next
from tests.annotate.conftest import enter, make_campaign, next_task

pytestmark = pytest.mark.django_db


def test_markdown_is_rendered_with_html_escaped_and_script_links_dropped():
    html = onboarding.markdown_html(
        "## Task\n**Pick** the [better](https://example.org/guide) set.\n\n"
        "<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1))"
    )
    assert "<h2>Task</h2>" in html and "<strong>Pick</strong>" in html
    assert '<a href="https://example.org/guide">better</a>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html
    assert 'href="javascript' not in html


def test_a_campaign_with_consent_leases_nothing_before_it_is_accepted(world, csrf_client):
    campaign = make_campaign(world, consent_text="I agree that my answers are published anonymously.")
    token = enter(csrf_client, campaign)
    refused = next_task(csrf_client, campaign, token)
    assert refused.status_code == 403 and "consent" in refused.json()["detail"]

    url = f"/api/annotate/campaigns/{campaign.slug}/onboarded"
    no = csrf_client.post(url, json.dumps({"consent": False}), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert no.status_code == 403 and "consent" in no.json()["detail"]
    assert Annotator.objects.get().onboarded_at is None

    yes = csrf_client.post(url, json.dumps({"consent": True}), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert yes.status_code == 200
    assert next_task(csrf_client, campaign, token).json()["task"] is not None


def test_without_consent_text_the_first_screen_is_informational_and_recorded_once(world):
    campaign = make_campaign(world)
    annotator = annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": "P1", "STUDY_ID": "s", "SESSION_ID": "x"}, user=None
    )
    assert onboarding.needs_onboarding(annotator=annotator)
    assert assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task is not None
    onboarding.annotator_onboard(annotator=annotator, campaign=campaign, consent=False)
    first = Annotator.objects.get().onboarded_at
    onboarding.annotator_onboard(annotator=Annotator.objects.get(), campaign=campaign, consent=False)
    assert first is not None and Annotator.objects.get().onboarded_at == first
    assert not onboarding.needs_onboarding(annotator=Annotator.objects.get())


def test_consent_must_be_exactly_true(world):
    campaign = make_campaign(world, consent_text="I agree.")
    annotator = annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": "P1", "STUDY_ID": "s", "SESSION_ID": "x"}, user=None
    )
    with pytest.raises(ConsentRequired):
        onboarding.annotator_onboard(annotator=annotator, campaign=campaign, consent="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("body", ['{"consent": "yes"}', '{"consent": 1}', '{"consent": null}', '[true]', 'true'])
@pytest.mark.parametrize("consent_text", ["", "I agree."])
def test_a_consent_that_is_not_a_boolean_is_a_400_and_records_nothing(world, csrf_client, body, consent_text):
    campaign = make_campaign(world, consent_text=consent_text)
    token = enter(csrf_client, campaign)
    url = f"/api/annotate/campaigns/{campaign.slug}/onboarded"
    answer = csrf_client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 400 and "consent" in answer.json()["detail"], answer.content
    assert Annotator.objects.get().onboarded_at is None
