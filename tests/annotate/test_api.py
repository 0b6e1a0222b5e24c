"""The annotation API over HTTP (annotate/api.py): contract, errors, anonymity, permissions."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from tests.annotate.conftest import enter, make_campaign, next_task, post_vote

pytestmark = pytest.mark.django_db


def test_a_crowd_worker_gets_a_task_votes_and_replays_safely(csrf_client, world):
    campaign = make_campaign(world, per_person_quota=4)
    token = enter(csrf_client, campaign)
    response = next_task(csrf_client, campaign, token)
    assert response.status_code == 200
    body = response.json()
    task = body["task"]
    assert set(task) == {"lease", "reference", "text", "sets", "options", "expires_at"}
    assert task["reference"]["url"].startswith("/images/") and task["reference"]["alt"] == "Reference garment"
    assert [img["alt"] for img in task["sets"]["left"]] == [f"Left set, image {i} of 5" for i in range(1, 6)]
    assert task["options"] == {"tie": False, "ratings": False, "irrelevant": False}
    assert body["progress"] == {"done": 0, "quota": 4} and body["done"] is False
    assert set(body["next"]) == {"reference", "text", "sets"}

    first = post_vote(csrf_client, token, lease=task["lease"], idempotency_key="click-1", time_ms=2100)
    again = post_vote(csrf_client, token, lease=task["lease"], idempotency_key="click-1", time_ms=2100)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == {"ok": True}
    assert Vote.objects.count() == 1 and Vote.objects.get().time_ms == 2100
    following = next_task(csrf_client, campaign, token).json()
    assert following["progress"]["done"] == 1
    assert [i["url"] for i in following["task"]["sets"]["left"]] == [i["url"] for i in body["next"]["sets"]["left"]]


def test_the_end_gives_the_completion_code_and_url(csrf_client, world):
    campaign = make_campaign(
        world,
        per_person_quota=1,
        completion_code="XYZ123",
        completion_code_per_annotator=False,
        completion_url="https://app.prolific.com/submissions/complete?cc=XYZ123",
    )
    token = enter(csrf_client, campaign)
    lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    assert post_vote(csrf_client, token, lease=lease).status_code == 201
    body = next_task(csrf_client, campaign, token).json()
    assert body == {
        "task": None,
        "done": True,
        "reason": "quota_reached",
        "progress": {"done": 1, "quota": 1},
        "completion": {"code": "XYZ123", "url": "https://app.prolific.com/submissions/complete?cc=XYZ123"},
    }


def test_a_latecomer_to_a_full_study_gets_no_completion_code(csrf_client, world, django_user_model):
    campaign = make_campaign(world, votes_per_pair=1, completion_code="XYZ123", completion_code_per_annotator=False)
    first = enter(csrf_client, campaign)
    while (body := next_task(csrf_client, campaign, first).json())["task"] is not None:
        assert post_vote(csrf_client, first, lease=body["task"]["lease"]).status_code == 201
    assert body["completion"]["code"] == "XYZ123" and body["reason"] == "no_tasks_left"

    from django.test import Client

    late = Client(enforce_csrf_checks=True)
    token = enter(late, campaign, pid="latecomer")
    body = next_task(late, campaign, token).json()
    assert body == {"task": None, "done": True, "reason": "no_tasks_left",
                    "progress": {"done": 0, "quota": campaign.per_person_quota or None}, "completion": None}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"lease": str(uuid.uuid4())}, 404, "no task with lease"),
        ({"lease": "not-a-uuid"}, 404, "not a valid lease id"),
        ({"choice": "up"}, 400, "choice must be one of left, right"),
        ({"rating_left": 4}, 400, "does not ask for ratings"),
        ({"irrelevant": "yes"}, 400, "irrelevant must be true or false"),
        ({"idempotency_key": ""}, 400, "missing field(s): idempotency_key"),
    ],
)
def test_invalid_votes_get_a_clear_4xx(csrf_client, world, body, status, message):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    response = post_vote(csrf_client, token, **{"lease": lease, **body})
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert not Vote.objects.exists()


def test_an_expired_lease_gets_410_and_an_answered_task_409(csrf_client, world):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    body = next_task(csrf_client, campaign, token).json()
    assert post_vote(csrf_client, token, lease=body["task"]["lease"]).status_code == 201
    response = post_vote(csrf_client, token, lease=body["task"]["lease"], idempotency_key="other")
    assert response.status_code == 409 and "already answered" in response.json()["detail"]
    current = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    Assignment.objects.filter(lease=current).update(expires_at=timezone.now() - timedelta(seconds=5))
    response = post_vote(csrf_client, token, lease=current)
    assert response.status_code == 410 and "expired" in response.json()["detail"]


def test_votes_need_the_csrf_token(csrf_client, world):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    response = csrf_client.post(
        "/api/annotate/votes",
        json.dumps({"lease": lease, "choice": "left", "idempotency_key": "k"}),
        content_type="application/json",
    )
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert next_task(csrf_client, campaign, "wrong-token").status_code == 403


def test_another_annotators_lease_is_refused(world):
    campaign = make_campaign(world)
    alice, mallory = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    alice_token, mallory_token = enter(alice, campaign, "ALICE"), enter(mallory, campaign, "MALLORY")
    lease = next_task(alice, campaign, alice_token).json()["task"]["lease"]
    response = post_vote(mallory, mallory_token, lease=lease)
    assert response.status_code == 403 and "someone else" in response.json()["detail"]
    assert not Vote.objects.exists()


def test_next_without_entering_is_refused(csrf_client, world):
    campaign = make_campaign(world)
    csrf_client.get("/api/annotate/campaigns/nope/enter")  # sets the CSRF cookie, enters nothing
    token = csrf_client.cookies["csrftoken"].value
    response = next_task(csrf_client, campaign, token)
    assert response.status_code == 403 and "open the campaign's page" in response.json()["detail"]


def test_a_logged_in_user_annotates_as_themselves(client, world, researcher):
    campaign = make_campaign(world)
    client.force_login(researcher)
    response = client.post(f"/api/annotate/campaigns/{campaign.slug}/next")
    assert response.status_code == 200
    assert Annotator.objects.get().user == researcher
    lease = response.json()["task"]["lease"]
    assert post_vote(client, "", lease=lease).status_code == 201


def test_a_closed_campaign_answers_409(csrf_client, world):
    campaign = make_campaign(world)
    token = enter(csrf_client, campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    response = next_task(csrf_client, campaign, token)
    assert response.status_code == 409 and "not open" in response.json()["detail"]


def test_annotator_answers_never_name_models_comparisons_or_gold(csrf_client, world):
    campaign = make_campaign(world, gold_share=0.4, per_person_quota=0)
    token = enter(csrf_client, campaign)
    forbidden = [m.name for m in world.models] + ["model", "comparison", "gold", campaign.name]
    comparison_ids = set(Comparison.objects.filter(campaign=campaign).values_list("pk", flat=True))
    seen = 0
    while True:
        response = next_task(csrf_client, campaign, token)
        text = response.content.decode()
        for word in forbidden:
            assert word not in text
        body = response.json()
        if body["task"] is None:
            break
        assert set(body["task"]) == {"lease", "reference", "text", "sets", "options", "expires_at"}
        vote = post_vote(csrf_client, token, lease=body["task"]["lease"])
        assert vote.content.decode() == '{"ok":true}'
        seen += 1
    assert seen == len(comparison_ids) and Comparison.objects.filter(is_gold=True).exists()


def test_campaign_figures_are_for_staff_only(client, world, staff_user, outsider):
    campaign = make_campaign(world)
    for path in ("/api/annotate/campaigns/", f"/api/annotate/campaigns/{campaign.slug}"):
        assert client.get(path).status_code == 403
        client.force_login(outsider)
        assert client.get(path).status_code == 403
        client.force_login(staff_user)
        assert client.get(path).status_code == 200
        client.logout()
    client.force_login(staff_user)
    listing = client.get("/api/annotate/campaigns/").json()["results"]
    assert listing[0]["slug"] == campaign.slug and listing[0]["comparisons"] == len(world.queries)
    detail = client.get(f"/api/annotate/campaigns/{campaign.slug}").json()
    assert detail["figures"]["comparisons"] == len(world.queries) and detail["figures"]["votes"] == 0


def test_the_openapi_schema_lists_the_annotation_endpoints(client, staff_user):
    client.force_login(staff_user)
    schema = client.get("/api/schema/?format=json").content.decode()
    for path in ("/api/annotate/votes", "/api/annotate/campaigns/{slug}/next", "/api/annotate/campaigns/{slug}/enter"):
        assert path in schema


def test_both_irrelevant_is_a_whole_answer_without_choice_or_ratings(csrf_client, world):
    campaign = make_campaign(world, ask_ratings=True, ask_irrelevant=True)
    token = enter(csrf_client, campaign)
    lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    # A choice is still needed without the irrelevant mark, and ratings with a choice.
    assert post_vote(csrf_client, token, lease=lease, choice=None).status_code == 400
    refused = post_vote(csrf_client, token, lease=lease, choice="left")
    assert refused.status_code == 400 and "rating_left is required" in refused.json()["detail"]
    response = post_vote(csrf_client, token, lease=lease, choice=None, irrelevant=True)
    assert response.status_code == 201, response.content
    vote = Vote.objects.get()
    assert (vote.choice, vote.irrelevant, vote.rating_a, vote.rating_b) == ("tie", True, None, None)
    # Not where the campaign does not ask for it.
    other = make_campaign(world, ask_irrelevant=False)
    token = enter(csrf_client, other, pid="PID0002")
    lease = next_task(csrf_client, other, token).json()["task"]["lease"]
    refused = post_vote(csrf_client, token, lease=lease, choice=None, irrelevant=True)
    assert refused.status_code == 400 and "does not ask for it" in refused.json()["detail"]
