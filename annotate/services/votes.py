"""Recording a vote on a leased comparison (:func:`vote_record`): validation, the too-fast and gold checks,
and the counts adaptive overlap keeps, in a fixed number of prepared SQL statements."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import IntegrityError, connection
from django.utils import timezone

from annotate.errors import (
    AlreadyAnswered,
    CampaignNotOpen,
    InvalidVote,
    LeaseExpired,
    LeaseNotFound,
    NotYourLease,
)
from annotate.models import Assignment, Campaign
from annotate.services.db import _aware, _db_datetime, _db_lease
from hpbench import sql
from hpbench.inputs import text_problem
from hpbench.sql import Statement


@dataclass(frozen=True)
class Caller:
    """Who submits: the annotators this session entered as, and the logged-in user (if any)."""

    annotator_ids: frozenset[int]
    user_id: int | None = None


@dataclass(frozen=True)
class VoteResult:
    created: bool  # False: a replay of the vote already recorded under the same idempotency key
    # Gold tasks of campaigns that give feedback: whether the answer was the gold one (None: no feedback).
    correct: bool | None = None


def vote_too_fast(*, min_ms: int, time_ms: int | None, shown_at: datetime, now: datetime) -> bool:
    """Whether a vote came faster than the campaign's ``min_ms`` (0: never): by the page's own clock
    (``time_ms``) or by the server's, since next-task served the task as the one on screen (an upper bound of its
    time on screen, which a page cannot stretch: a preloaded task's clock starts when it is served, not leased)."""
    if not min_ms:
        return False
    return (now - shown_at).total_seconds() * 1000 < min_ms or (time_ms is not None and time_ms < min_ms)


def vote_counts_for_a_side(*, flagged: bool, too_fast: bool) -> bool:
    """Whether a vote moves an adaptive comparison's a/b counts: a flagged annotator's vote, or one too fast to
    count, counts towards the maximum but for neither side."""
    return not (flagged or too_fast)


def gold_correct(*, feedback: bool, is_gold: bool, gold_answer: str, stored_choice: str) -> bool | None:
    """The feedback shown after a gold vote where the campaign gives it: right or wrong (a tie is wrong)."""
    if not (feedback and is_gold and gold_answer):
        return None
    return stored_choice == gold_answer


@dataclass(frozen=True)
class VoteValues:
    """A vote's answer checked against the campaign's options and mapped to the stored sets."""

    choice: str  # "a", "b" or "tie"
    rating_a: int | None
    rating_b: int | None
    irrelevant: bool
    time_ms: int | None


def vote_values(
    *,
    choice,
    rating_left,
    rating_right,
    irrelevant,
    time_ms,
    left_is_a: bool,
    allow_tie: bool,
    ask_ratings: bool,
    ask_irrelevant: bool,
) -> VoteValues:
    """Check an answer as the annotator gave it (sides on screen) and map it through the lease's placement.
    Raises :class:`InvalidVote` naming the field at fault.

    "Both sets are irrelevant" (``irrelevant`` true, ``choice`` null) is a complete answer on its own: no winner
    and no ratings are needed. It is stored as ``choice="tie"`` with ``irrelevant`` set (no preference either way;
    the benchmark freeze drops a comparison whose votes are in majority irrelevant)."""
    if not isinstance(irrelevant, bool):
        raise InvalidVote(f"irrelevant must be true or false, got {irrelevant!r}")
    if irrelevant and not ask_irrelevant:
        raise InvalidVote("irrelevant must be false: this campaign does not ask for it")
    irrelevant_only = irrelevant and choice is None
    allowed = ("left", "right", "tie") if allow_tie else ("left", "right")
    if not irrelevant_only and choice not in allowed:
        raise InvalidVote(f"choice must be one of {', '.join(allowed)}; got {choice!r}")
    rating_left = _rating(rating_left, "rating_left", bool(ask_ratings) and not irrelevant_only, bool(ask_ratings))
    rating_right = _rating(rating_right, "rating_right", bool(ask_ratings) and not irrelevant_only, bool(ask_ratings))
    if time_ms is not None and (
        isinstance(time_ms, bool) or not isinstance(time_ms, int) or not 0 <= time_ms <= 86_400_000
    ):
        raise InvalidVote(f"time_ms must be a whole number of milliseconds from 0 to 86400000, got {time_ms!r}")
    left_is_a = bool(left_is_a)
    return VoteValues(
        choice="tie" if choice in ("tie", None) else ("a" if (choice == "left") == left_is_a else "b"),
        rating_a=rating_left if left_is_a else rating_right,
        rating_b=rating_right if left_is_a else rating_left,
        irrelevant=irrelevant,
        time_ms=time_ms,
    )


def _rating(value, name: str, required: bool, asked: bool) -> int | None:
    if value is None:
        if required:
            raise InvalidVote(f"{name} is required: rate each set from 1 to 5")
        return None
    if not asked:
        raise InvalidVote(f"{name} must be null: this campaign does not ask for ratings")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InvalidVote(f"{name} must be a whole number from 1 to 5, got {value!r}")
    return value


def vote_record(
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
    """Record the answer to a leased task, exactly once.

    ``choice`` is the side chosen on screen ("left", "right", or "tie" where allowed; None with ``irrelevant``
    for "both sets are irrelevant" alone); it and the
    ratings are mapped back to the stored sets through the lease's placement. Submitting again with the
    same ``idempotency_key`` returns the first vote (``created=False``) and records nothing.
    Raises :class:`LeaseNotFound` (404), :class:`NotYourLease` (403), :class:`InvalidVote` (400),
    :class:`AlreadyAnswered` / :class:`CampaignNotOpen` (409) or :class:`LeaseExpired` (410).
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
        with sql.hot_transaction() as batch:
            return _vote_record_locked(
                batch, lease_uuid, caller, choice, idempotency_key, rating_left, rating_right, irrelevant, time_ms
            )
    except IntegrityError:
        # Another vote already holds this key (the only unique constraint a correct request can hit).
        raise AlreadyAnswered(
            "this idempotency_key was already used for another vote: send a new key for each task"
        ) from None


class _VoteState(NamedTuple):
    """The row :data:`_VOTE_STATE` reads, by name (its columns are these fields, in this order)."""

    assignment_id: int
    annotator_id: int
    comparison_id: int
    state: str
    left_is_a: bool
    expires_at: datetime | str
    user_id: int | None
    flagged: bool
    slug: str
    status: str
    allow_tie: bool
    ask_ratings: bool
    ask_irrelevant: bool
    shown_at: datetime | str  # when next-task first served it as the task on screen (older leases: leased)
    min_vote_ms: int
    gold_feedback: bool
    is_gold: bool
    gold_answer: str
    adaptive_overlap: bool
    min_votes_per_pair: int
    votes_per_pair: int
    overlap_confidence: float


_VOTE_STATE = (
    "SELECT s.id, s.annotator_id, s.comparison_id, s.state, s.left_is_a, s.expires_at, an.user_id, an.flagged,"
    " c.slug, c.status, c.allow_tie, c.ask_ratings, c.ask_irrelevant,"
    " COALESCE(s.shown_at, s.created_at), c.min_vote_ms, c.gold_feedback, x.is_gold, x.gold_answer,"
    " c.adaptive_overlap, c.min_votes_per_pair, c.votes_per_pair, c.overlap_confidence"
    " FROM annotate_assignment s JOIN annotate_annotator an ON an.id = s.annotator_id"
    " JOIN annotate_campaign c ON c.id = s.campaign_id JOIN annotate_comparison x ON x.id = s.comparison_id"
    " WHERE s.lease = %s"
)


_VOTE_STATE_LOCKED = Statement("annotate_vote_state_locked", _VOTE_STATE + " FOR UPDATE OF s")


_VOTE_STATE_PLAIN = Statement("annotate_vote_state", _VOTE_STATE)


_PREVIOUS_VOTE = Statement(
    "annotate_previous_vote", "SELECT idempotency_key FROM annotate_vote WHERE assignment_id = %s"
)


_SUBMIT = Statement("annotate_submit", "UPDATE annotate_assignment SET state = 'submitted' WHERE id = %s")


# The lease's slot becomes a vote: open_slots is unchanged.
_COUNT_ON_COMPARISON = Statement(
    "annotate_count_comparison", "UPDATE annotate_comparison SET votes_count = votes_count + 1 WHERE id = %s"
)


# Adaptive overlap: the same counter UPDATE also applies hpbench.metrics.adaptive.overlap_stop to the counts after
# this vote (gold tasks excepted: they keep fixed overlap), on the locked row (so concurrent votes on one comparison
# each see the other's counts). SET expressions read the row before the update. Decided: no new leases, target =
# votes + live leases. Undecided with no open slot and no live lease left (target = votes after this one): one more
# slot, up to the maximum. "Decided" is |a - b| >= the lead needed at a + b votes, read from a fixed-width table
# parameter (see _lead_table), which needs no array type on either database.
def _decided(votes: str) -> str:
    """SQL: the comparison with ``votes`` votes in all and its a/b counts moved by the parameters (da, db) is
    decided (parameters: min_votes, da, db, the lead table, da + db)."""
    return (
        f"({votes} >= %s AND ABS(votes_a + %s - votes_b - %s)"
        " >= CAST(COALESCE(NULLIF(SUBSTR(%s, 2 * (votes_a + votes_b + %s) + 1, 2), ''), '99') AS INTEGER))"
    )


_DECIDED = _decided("votes_count + 1")


_COUNT_ADAPTIVE = Statement(
    "annotate_count_comparison_adaptive",
    "UPDATE annotate_comparison SET votes_count = votes_count + 1, votes_a = votes_a + %s, votes_b = votes_b + %s,"
    " target_votes = CASE WHEN stop_reason <> '' OR is_gold THEN target_votes"
    f" WHEN {_DECIDED} OR votes_count + 1 >= %s THEN target_votes - open_slots"
    " WHEN open_slots = 0 AND target_votes = votes_count + 1 THEN target_votes + 1 ELSE target_votes END,"
    " open_slots = CASE WHEN stop_reason <> '' OR is_gold THEN open_slots"
    f" WHEN {_DECIDED} OR votes_count + 1 >= %s THEN 0"
    " WHEN open_slots = 0 AND target_votes = votes_count + 1 THEN 1 ELSE open_slots END,"
    " stop_reason = CASE WHEN stop_reason <> '' OR is_gold THEN stop_reason"
    f" WHEN {_DECIDED} THEN 'decided' WHEN votes_count + 1 >= %s THEN 'max_votes' ELSE '' END"
    " WHERE id = %s",
)


# A changed answer (annotate/undo.py) moves the a/b counts and applies the rule again, in one statement on the
# locked row: an open comparison the change decides closes as a vote would close it; a stopped one the change
# leaves undecided under the maximum reopens (stop_reason '' again), with one more slot when no live lease is
# left to bring its next vote (target = votes); a stop at the maximum that the change decides becomes
# 'decided'. Gold tasks keep fixed overlap.
_RECOUNT_DECIDED = _decided("votes_count")
_REOPEN = f"stop_reason <> '' AND NOT {_RECOUNT_DECIDED} AND votes_count < %s AND target_votes = votes_count"
_RECOUNT_ADAPTIVE = Statement(
    "annotate_recount_comparison_adaptive",
    "UPDATE annotate_comparison SET votes_a = votes_a + %s, votes_b = votes_b + %s,"
    " target_votes = CASE WHEN is_gold THEN target_votes"
    f" WHEN stop_reason = '' AND {_RECOUNT_DECIDED} THEN target_votes - open_slots"
    f" WHEN {_REOPEN} THEN target_votes + 1 ELSE target_votes END,"
    " open_slots = CASE WHEN is_gold THEN open_slots"
    f" WHEN stop_reason = '' AND {_RECOUNT_DECIDED} THEN 0"
    f" WHEN {_REOPEN} THEN 1 ELSE open_slots END,"
    " stop_reason = CASE WHEN is_gold THEN stop_reason"
    f" WHEN {_RECOUNT_DECIDED} THEN 'decided' WHEN votes_count >= %s THEN 'max_votes' ELSE '' END"
    " WHERE id = %s",
)


def adaptive_recount(
    *, comparison_id: int, da: int, db: int, min_votes: int, max_votes: int, confidence: float
) -> sql.Step:
    """The step that moves an adaptive comparison's a/b counts by ``da``/``db`` (a changed answer) and applies
    :func:`hpbench.metrics.adaptive.overlap_stop` again (see :data:`_RECOUNT_ADAPTIVE`)."""
    decided = [min_votes, da, db, _lead_table(max_votes, float(confidence)), da + db]
    reopen = [*decided, max_votes]
    return (
        _RECOUNT_ADAPTIVE,
        [da, db, *decided, *reopen, *decided, *reopen, *decided, max_votes, comparison_id],
    )


@functools.lru_cache(maxsize=64)
def _lead_table(max_votes: int, confidence: float) -> str:
    """For n = 0..max(max_votes, 20) a/b votes, the least lead |a - b| that :func:`overlap_stop` calls decided
    (99: none), two digits each."""
    from hpbench.metrics.adaptive import majority_confidence

    leads = []
    for n in range(max(max_votes, 20) + 1):  # past the table (a maximum lowered later): no lead decides
        need = 99
        for lead in range(n % 2 or 2, n + 1, 2):
            if majority_confidence((n + lead) // 2, (n - lead) // 2) >= confidence:
                need = lead
                break
        leads.append(f"{need:02d}")
    return "".join(leads)


def _adaptive_count_params(comparison_id: int, stored: str, counted: bool, min_votes, max_votes, confidence):
    da = int(counted and stored == "a")
    db = int(counted and stored == "b")
    decided = [min_votes, da, db, _lead_table(max_votes, float(confidence)), da + db]
    return [da, db, *decided, max_votes, *decided, max_votes, *decided, max_votes, comparison_id]


_COUNT_ON_ANNOTATOR = Statement(
    "annotate_count_annotator", "UPDATE annotate_annotator SET votes_count = votes_count + 1 WHERE id = %s"
)


_INSERT_VOTE = Statement(
    "annotate_insert_vote",
    "INSERT INTO annotate_vote (assignment_id, comparison_id, annotator_id, choice, rating_a, rating_b, irrelevant,"
    " time_ms, idempotency_key, excluded, created_at, too_fast)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
)


def _vote_record_locked(batch, lease_uuid, caller, choice, key, rating_left, rating_right, irrelevant, time_ms):
    """The checks and writes of :func:`vote_record`; the writes travel with the commit."""
    statement = _VOTE_STATE_LOCKED if connection.features.has_select_for_update_of else _VOTE_STATE_PLAIN
    batch.run((statement, [_db_lease(lease_uuid)]))
    fetched = batch.cursor.fetchone()
    if fetched is None:
        raise LeaseNotFound(f"no task with lease {lease_uuid}: ask for the next task")
    row = _VoteState._make(fetched)
    mine = row.annotator_id in caller.annotator_ids
    if not mine and not (caller.user_id is not None and row.user_id == caller.user_id):
        raise NotYourLease("this lease belongs to someone else")
    if row.state == Assignment.State.SUBMITTED:
        batch.run((_PREVIOUS_VOTE, [row.assignment_id]))
        previous = batch.cursor.fetchone()
        if previous is not None and previous[0] == key:
            return VoteResult(created=False)
        raise AlreadyAnswered("this task was already answered; ask for the next task")
    if row.status != Campaign.Status.OPEN:
        raise CampaignNotOpen(f"campaign {row.slug!r} is closed: votes are no longer accepted")
    now = timezone.now()
    expires_at = _aware(row.expires_at)
    if row.state == Assignment.State.EXPIRED or expires_at <= now:
        raise LeaseExpired(f"this task's lease expired at {expires_at.isoformat()}; ask for the next task")
    values = vote_values(
        choice=choice,
        rating_left=rating_left,
        rating_right=rating_right,
        irrelevant=irrelevant,
        time_ms=time_ms,
        left_is_a=bool(row.left_is_a),
        allow_tie=bool(row.allow_tie),
        ask_ratings=bool(row.ask_ratings),
        ask_irrelevant=bool(row.ask_irrelevant),
    )
    too_fast = vote_too_fast(min_ms=row.min_vote_ms, time_ms=values.time_ms, shown_at=_aware(row.shown_at), now=now)
    if row.adaptive_overlap:
        counted = vote_counts_for_a_side(flagged=bool(row.flagged), too_fast=too_fast)
        params = _adaptive_count_params(
            row.comparison_id, values.choice, counted, row.min_votes_per_pair,
            row.votes_per_pair, row.overlap_confidence,
        )
        count = (_COUNT_ADAPTIVE, params)
    else:
        count = (_COUNT_ON_COMPARISON, [row.comparison_id])
    batch.defer(
        (_SUBMIT, [row.assignment_id]),
        count,
        (_COUNT_ON_ANNOTATOR, [row.annotator_id]),
        (
            _INSERT_VOTE,
            [
                row.assignment_id,
                row.comparison_id,
                row.annotator_id,
                values.choice,
                values.rating_a,
                values.rating_b,
                values.irrelevant,
                values.time_ms,
                key,
                bool(row.flagged),
                _db_datetime(now),
                too_fast,
            ],
        ),
    )
    correct = gold_correct(
        feedback=bool(row.gold_feedback),
        is_gold=bool(row.is_gold),
        gold_answer=row.gold_answer,
        stored_choice=values.choice,
    )
    return VoteResult(created=True, correct=correct)
