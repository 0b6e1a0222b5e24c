"""Changing one's last answer ("back to my last answer" on the voting page).

An annotator may reopen the task they answered last while its lease is still live and answer it again: the
new answer replaces the stored vote in place. Nothing is counted twice: the vote row, its assignment and the
comparison's and annotator's ``votes_count`` stay as they are; only the answer, its timing flag and the
idempotency key change, and the answer first given is kept (``Vote.first_choice``: gold accuracy counts it). With
adaptive overlap the comparison's a/b counts follow the change and the stopping rule is applied again in the
same statement: a comparison the change leaves undecided reopens. The next-task and vote hot paths are untouched.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotate.errors import (
    AlreadyAnswered,
    CampaignNotOpen,
    InvalidVote,
    LeaseExpired,
    LeaseNotFound,
    NotLastAnswer,
    NotYourLease,
)
from annotate.models import Assignment, Campaign, Vote
from annotate.services.votes import (
    Caller,
    VoteResult,
    adaptive_recount,
    gold_correct,
    vote_counts_for_a_side,
    vote_too_fast,
    vote_values,
)
from hpbench import sql
from hpbench.inputs import text_problem


def vote_replace(
    *,
    lease: uuid.UUID | str,
    caller: Caller,
    choice: str | None,
    idempotency_key: str,
    rating_left: int | None = None,
    rating_right: int | None = None,
    irrelevant: bool = False,
    time_ms: int | None = None,
) -> VoteResult:
    """Replace the answer recorded for ``lease`` with a new one (same arguments as ``services.vote_record``).

    Allowed only for the caller's own lease, on their most recent vote, while the lease has not expired and the
    campaign is open. The new ``idempotency_key`` identifies the replacement: sending it again changes nothing
    (``created=False``). Raises :class:`LeaseNotFound` (404), :class:`NotYourLease` (403), :class:`InvalidVote`
    (400), :class:`NotLastAnswer` / :class:`AlreadyAnswered` / :class:`CampaignNotOpen` (409) or
    :class:`LeaseExpired` (410).
    """
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 100:
        raise InvalidVote("idempotency_key must be a string of 1 to 100 characters")
    problem = text_problem(idempotency_key)
    if problem:
        raise InvalidVote(f"idempotency_key {problem}")
    try:
        lease_uuid = lease if isinstance(lease, uuid.UUID) else uuid.UUID(str(lease))
    except ValueError:
        raise LeaseNotFound(f"lease {lease!r} is not a valid lease id") from None
    try:
        with transaction.atomic():
            return _replace_locked(
                lease_uuid, caller, choice, idempotency_key, rating_left, rating_right, irrelevant, time_ms
            )
    except IntegrityError:
        raise AlreadyAnswered(
            "this idempotency_key was already used for another vote: send a new key for each answer"
        ) from None


def _replace_locked(lease_uuid, caller, choice, key, rating_left, rating_right, irrelevant, time_ms) -> VoteResult:
    locking: dict[str, Any] = {"of": ("self",)} if connection.features.has_select_for_update_of else {}
    assignment = (
        Assignment.objects.select_for_update(**locking)
        .select_related("annotator", "campaign", "comparison")
        .filter(lease=lease_uuid)
        .first()
    )
    if assignment is None:
        raise LeaseNotFound(f"no task with lease {lease_uuid}")
    annotator, campaign, comparison = assignment.annotator, assignment.campaign, assignment.comparison
    if annotator.pk not in caller.annotator_ids and not (
        caller.user_id is not None and annotator.user_id == caller.user_id
    ):
        raise NotYourLease("this lease belongs to someone else")
    vote = Vote.objects.filter(assignment=assignment).first()
    if vote is None:
        raise NotLastAnswer("this task has no answer to change yet: answer it first")
    if vote.idempotency_key == key:
        return VoteResult(created=False)
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignNotOpen(f"campaign {campaign.slug!r} is closed: answers can no longer change")
    now = timezone.now()
    if assignment.expires_at <= now:
        raise LeaseExpired(f"the time to change this answer ran out at {assignment.expires_at.isoformat()}")
    latest = Vote.objects.filter(annotator=annotator).order_by("-id").values_list("id", flat=True).first()
    if latest != vote.pk:
        raise NotLastAnswer("only your last answer can be changed")
    values = vote_values(
        choice=choice,
        rating_left=rating_left,
        rating_right=rating_right,
        irrelevant=irrelevant,
        time_ms=time_ms,
        left_is_a=assignment.left_is_a,
        allow_tie=campaign.allow_tie,
        ask_ratings=campaign.ask_ratings,
        ask_irrelevant=campaign.ask_irrelevant,
    )
    too_fast = vote_too_fast(
        min_ms=campaign.min_vote_ms,
        time_ms=values.time_ms,
        shown_at=assignment.shown_at or assignment.created_at,
        now=now,
    )
    Vote.objects.filter(pk=vote.pk).update(
        choice=values.choice,
        # Gold accuracy counts the answer first given: a change after gold feedback corrects nothing.
        first_choice=vote.first_choice or vote.choice,
        rating_a=values.rating_a,
        rating_b=values.rating_b,
        irrelevant=values.irrelevant,
        time_ms=values.time_ms,
        too_fast=too_fast,
        idempotency_key=key,
    )
    if campaign.adaptive_overlap and not comparison.is_gold:
        # Keep the comparison's a/b counts exact and its stop where the rule puts it after the change
        # (annotate.services.votes._RECOUNT_ADAPTIVE: a decided comparison the change undecides reopens).
        def side(choice: str, fast: bool) -> tuple[int, int]:
            counted = vote_counts_for_a_side(flagged=annotator.flagged, too_fast=fast)
            return int(counted and choice == "a"), int(counted and choice == "b")

        (old_a, old_b), (new_a, new_b) = side(vote.choice, vote.too_fast), side(values.choice, too_fast)
        if (old_a, old_b) != (new_a, new_b):
            step = adaptive_recount(
                comparison_id=comparison.pk,
                da=new_a - old_a,
                db=new_b - old_b,
                min_votes=campaign.min_votes_per_pair,
                max_votes=campaign.votes_per_pair,
                confidence=campaign.overlap_confidence,
            )
            with connection.cursor() as cursor:
                sql.run(cursor, step)
    correct = gold_correct(
        feedback=campaign.gold_feedback,
        is_gold=comparison.is_gold,
        gold_answer=comparison.gold_answer,
        stored_choice=values.choice,
    )
    return VoteResult(created=True, correct=correct)
