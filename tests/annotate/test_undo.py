"""Changing one's last answer (annotate/undo.py): the vote is replaced in place and nothing is counted twice.

Runs on PostgreSQL by default; ``DATABASE_URL=sqlite:///... pytest tests/annotate/test_undo.py`` runs it on SQLite.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate import undo
from annotate.errors import AlreadyAnswered, CampaignNotOpen, LeaseExpired, NotLastAnswer, NotYourLease
from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from annotate.services.entry import annotator_enter
from annotate.services.next_task import assignment_next
from annotate.services.votes import Caller, vote_record
from tests.annotate.conftest import enter, make_campaign, next_task, post_vote

pytestmark = pytest.mark.django_db


def _crowd(campaign: Campaign, pid: str) -> Annotator:
    return annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": pid, "STUDY_ID": "st", "SESSION_ID": f"s-{pid}"}, user=None
    )


def _caller(annotator: Annotator) -> Caller:
    return Caller(annotator_ids=frozenset({annotator.pk}))


def _answer(annotator: Annotator, campaign: Campaign, choice: str = "left", **extra) -> uuid.UUID:
    task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
    vote_record(
        lease=task.lease, caller=_caller(annotator), choice=choice, idempotency_key=f"k-{task.lease}", **extra
    )
    return task.lease


def _counts(lease: uuid.UUID) -> tuple[int, int, int, int]:
    assignment = Assignment.objects.select_related("comparison", "annotator").get(lease=lease)
    return (
        Vote.objects.count(),
        assignment.comparison.votes_count,
        assignment.annotator.votes_count,
        assignment.comparison.open_slots,
    )


def test_replacing_the_last_answer_changes_the_vote_and_no_count(world):
    campaign = make_campaign(world, ask_ratings=True, allow_tie=True)
    annotator = _crowd(campaign, "P1")
    lease = _answer(annotator, campaign, "left", rating_left=2, rating_right=4)
    before = _counts(lease)
    vote_id = Vote.objects.get().pk

    result = undo.vote_replace(
        lease=lease, caller=_caller(annotator), choice="right", idempotency_key="again-1", rating_left=1, rating_right=5
    )

    assert result.created is True
    assert _counts(lease) == before == (1, 1, 1, before[3])
    vote = Vote.objects.select_related("assignment").get()
    assert vote.pk == vote_id and vote.idempotency_key == "again-1"
    left_is_a = vote.assignment.left_is_a
    assert vote.choice == ("b" if left_is_a else "a")
    assert (vote.rating_a, vote.rating_b) == ((1, 5) if left_is_a else (5, 1))
    assert vote.assignment.state == Assignment.State.SUBMITTED


def test_a_replayed_replacement_changes_nothing_and_the_first_key_is_spent(world):
    campaign = make_campaign(world, allow_tie=True)
    annotator = _crowd(campaign, "P1")
    lease = _answer(annotator, campaign, "left")
    first = undo.vote_replace(lease=lease, caller=_caller(annotator), choice="tie", idempotency_key="r-1")
    again = undo.vote_replace(lease=lease, caller=_caller(annotator), choice="tie", idempotency_key="r-1")
    assert (first.created, again.created) == (True, False)
    assert Vote.objects.get().choice == "tie"
    # The original vote's key now replays nothing: it belongs to no vote, the task is answered.
    with pytest.raises(AlreadyAnswered):
        vote_record(lease=lease, caller=_caller(annotator), choice="left", idempotency_key=f"k-{lease}")


def test_a_key_of_another_vote_is_refused_and_nothing_changes(world):
    campaign = make_campaign(world)
    annotator = _crowd(campaign, "P1")
    first = _answer(annotator, campaign, "left")
    second = _answer(annotator, campaign, "left")
    with pytest.raises(AlreadyAnswered):
        undo.vote_replace(lease=second, caller=_caller(annotator), choice="right", idempotency_key=f"k-{first}")
    assert Vote.objects.get(assignment__lease=second).idempotency_key == f"k-{second}"


def test_only_the_last_answer_can_be_changed(world):
    campaign = make_campaign(world)
    annotator = _crowd(campaign, "P1")
    first = _answer(annotator, campaign)
    _answer(annotator, campaign)
    with pytest.raises(NotLastAnswer):
        undo.vote_replace(lease=first, caller=_caller(annotator), choice="right", idempotency_key="r-1")


def test_a_task_not_yet_answered_cannot_be_replaced(world):
    campaign = make_campaign(world)
    annotator = _crowd(campaign, "P1")
    task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
    with pytest.raises(NotLastAnswer):
        undo.vote_replace(lease=task.lease, caller=_caller(annotator), choice="right", idempotency_key="r-1")
    assert not Vote.objects.exists()


def test_an_expired_lease_or_a_closed_campaign_keeps_the_answer(world):
    campaign = make_campaign(world)
    annotator = _crowd(campaign, "P1")
    lease = _answer(annotator, campaign, "left")
    Assignment.objects.filter(lease=lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(LeaseExpired):
        undo.vote_replace(lease=lease, caller=_caller(annotator), choice="right", idempotency_key="r-1")
    Assignment.objects.filter(lease=lease).update(expires_at=timezone.now() + timedelta(minutes=5))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    with pytest.raises(CampaignNotOpen):
        undo.vote_replace(lease=lease, caller=_caller(annotator), choice="right", idempotency_key="r-2")
    assert Vote.objects.get().idempotency_key == f"k-{lease}"


def test_someone_elses_answer_cannot_be_changed(world):
    campaign = make_campaign(world)
    owner, other = _crowd(campaign, "P1"), _crowd(campaign, "P2")
    lease = _answer(owner, campaign)
    with pytest.raises(NotYourLease):
        undo.vote_replace(lease=lease, caller=_caller(other), choice="right", idempotency_key="r-1")


def test_the_replace_endpoint_replaces_over_http_and_the_database_holds_one_vote(world, csrf_client):
    campaign = make_campaign(world, gold_share=0.0)
    token = enter(csrf_client, campaign)
    lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
    assert post_vote(csrf_client, token, lease=lease, choice="left").status_code == 201
    body = {"lease": lease, "choice": "right", "idempotency_key": str(uuid.uuid4()), "time_ms": 2500}
    response = csrf_client.post(
        "/api/annotate/votes/replace", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201, response.content
    replay = csrf_client.post(
        "/api/annotate/votes/replace", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert replay.status_code == 200
    vote = Vote.objects.select_related("assignment").get()
    assert vote.choice == ("b" if vote.assignment.left_is_a else "a") and vote.time_ms == 2500
    assert Comparison.objects.get(pk=vote.comparison_id).votes_count == 1
    stranger = csrf_client.__class__(enforce_csrf_checks=True)
    other_token = enter(stranger, campaign, pid="PID0002")
    refused = stranger.post(
        "/api/annotate/votes/replace",
        json.dumps(body | {"idempotency_key": "x-1"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=other_token,
    )
    assert refused.status_code == 403
