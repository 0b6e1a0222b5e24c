"""Leasing the next comparison to an annotator (:func:`assignment_next`), a fixed number of prepared SQL
statements whatever the campaign's size."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from annotate import crowd
from annotate.errors import (
    CampaignNotOpen,
    ConsentRequired,
    NoAnnotator,
)
from annotate.models import Campaign
from annotate.services.db import _aware, _db_datetime, _db_lease, _skip_locked, _uuid
from hpbench import sql
from hpbench.sql import Statement

#: How many leases an annotator holds at once: the task on screen and the next one (preloaded).
LEASES_AHEAD = 2

#: The preloaded task's lease, at most (the campaign's ``lease_seconds`` if shorter). It is renewed to a full
#: lease once the task is on screen, so an identity that stopped voting holds its second slot this long only.
PREVIEW_LEASE_SECONDS = 120


@dataclass(frozen=True)
class TaskView:
    """One leased comparison as the annotator sees it (storage labels already mapped to left/right)."""

    lease: uuid.UUID
    reference: str  # the images' campaign tokens (annotate/aliases.py), never their ids
    text: str
    left: list[str]
    right: list[str]
    expires_at: datetime


@dataclass(frozen=True)
class CampaignView:
    """The campaign settings a next-task answer shows (read with the annotator's row)."""

    id: int
    slug: str
    status: str
    per_person_quota: int
    lease_seconds: int
    allow_tie: bool
    ask_ratings: bool
    ask_irrelevant: bool
    completion_code: str
    completion_url: str
    dataset_kind: str
    completion_code_per_annotator: bool = False
    max_votes_per_model_pair: int = 0


@dataclass(frozen=True)
class NextResult:
    campaign: CampaignView
    task: TaskView | None
    preview: TaskView | None
    done: int
    quota: int | None
    completion_code: str = ""  # what this annotator is shown once done (their own where the campaign says so)


def _task_view(lease, left_is_a, expires_at, text, shown) -> TaskView:
    shown = json.loads(shown) if isinstance(shown, str) else shown
    set_a, set_b = shown["a"], shown["b"]
    return TaskView(
        lease=lease,
        reference=shown["reference"],
        text=text,
        left=set_a if left_is_a else set_b,
        right=set_b if left_is_a else set_a,
        expires_at=expires_at,
    )


# The hot paths below use plain SQL, prepared once per connection on PostgreSQL (hpbench.sql): the ORM's
# query compilation, and PostgreSQL's planning, cost more than running the statements.
_NEXT_STATE = Statement(
    "annotate_next_state",
    # The annotator's campaign and their live leases (0, 1 or 2 rows of them), in one statement.
    "SELECT a.votes_count, c.id, c.slug, c.status, c.per_person_quota, c.lease_seconds, c.allow_tie,"
    " c.ask_ratings, c.ask_irrelevant, c.completion_code, c.completion_url, d.id, d.kind,"
    " c.completion_code_per_annotator,"
    " s.lease, s.left_is_a, s.expires_at, x.text, x.shown,"
    " a.start_position, a.onboarded_at IS NULL AND c.consent_text <> '', s.shown_at, c.max_votes_per_model_pair"
    " FROM annotate_annotator a JOIN annotate_campaign c ON c.id = a.campaign_id"
    " JOIN catalog_dataset d ON d.id = c.dataset_id"
    " LEFT JOIN annotate_assignment s ON s.annotator_id = a.id AND s.state = 'leased' AND s.expires_at > %s"
    " LEFT JOIN annotate_comparison x ON x.id = s.comparison_id"
    " WHERE a.id = %s AND c.slug = %s ORDER BY s.id LIMIT %s",
)


_NEXT_STATE_LOCKED = Statement(
    "annotate_next_state_locked",
    # The row lock serialises one annotator's concurrent requests (two tabs, retries).
    _NEXT_STATE.sql + " FOR UPDATE OF a",
)


# Campaign.max_votes_per_model_pair (parameters: the cap, the annotator, the cap): comparison c's model pair
# (either order) has fewer than the cap of the annotator's leases and votes, counted over their own assignments
# (an index range of at most their quota), evaluated only for a candidate the scan reaches. Gold tasks (no
# models) and a cap of 0 pass.
_UNDER_PAIR_CAP = (
    "(%s = 0 OR c.set_a_model_id IS NULL OR (SELECT COUNT(*) FROM annotate_assignment p"
    " JOIN annotate_comparison q ON q.id = p.comparison_id WHERE p.annotator_id = %s AND p.state <> 'expired'"
    " AND ((q.set_a_model_id = c.set_a_model_id AND q.set_b_model_id = c.set_b_model_id)"
    " OR (q.set_a_model_id = c.set_b_model_id AND q.set_b_model_id = c.set_a_model_id))) < %s)"
)


#: How many candidates in serving order one scan of the pick weighs against the cap per model pair, at most: an
#: identity at the cap on every pair would otherwise scan the whole pool on each next-task.
PICK_WINDOW = 256


# The first comparison with room in serving order from the annotator's start position, else from the start:
# two index-ordered scans, the second evaluated only when the first finds nothing. Each reads at most PICK_WINDOW
# candidates the annotator has not had, in serving order, and takes the first under the cap: the outer query has
# no ORDER BY of its own (both databases read a subquery's rows in its order; a sort there would weigh, and on
# PostgreSQL lock, every candidate of the window instead of stopping at the first that passes).
_PICK_FROM = (
    "SELECT c.id FROM (SELECT w.id, w.set_a_model_id, w.set_b_model_id FROM annotate_comparison w"
    " WHERE w.campaign_id = %s AND w.open_slots > 0 AND w.position {bound} %s AND NOT EXISTS ("
    "  SELECT 1 FROM annotate_assignment x WHERE x.annotator_id = %s AND x.comparison_id = w.id)"
    f" ORDER BY w.position LIMIT {PICK_WINDOW}{{{{lock}}}}) c"
    " WHERE " + _UNDER_PAIR_CAP + " LIMIT 1"
)


_PICK = (
    "UPDATE annotate_comparison SET open_slots = open_slots - 1 WHERE id = COALESCE(("
    + _PICK_FROM.format(bound=">=")
    + "), ("
    + _PICK_FROM.format(bound="<")
    + ")) RETURNING id, text, shown"
)


_PICK_SKIP_LOCKED = Statement("annotate_pick", _PICK.format(lock=" FOR UPDATE SKIP LOCKED"))


_PICK_PLAIN = Statement("annotate_pick_plain", _PICK.format(lock=""))


_TAKEOVER = (
    "SELECT a.id, c.id, c.text, c.shown"
    " FROM annotate_assignment a JOIN annotate_comparison c ON c.id = a.comparison_id"
    " WHERE a.campaign_id = %s AND a.state = 'leased' AND a.expires_at < %s AND c.stop_reason = ''"
    " AND NOT EXISTS ("
    "  SELECT 1 FROM annotate_assignment x WHERE x.annotator_id = %s AND x.comparison_id = a.comparison_id)"
    " AND " + _UNDER_PAIR_CAP + " ORDER BY a.expires_at LIMIT 1{lock}"
)


_TAKEOVER_SKIP_LOCKED = Statement("annotate_takeover", _TAKEOVER.format(lock=" FOR UPDATE OF a SKIP LOCKED"))


_TAKEOVER_PLAIN = Statement("annotate_takeover_plain", _TAKEOVER.format(lock=""))


_EXPIRE = Statement("annotate_expire", "UPDATE annotate_assignment SET state = 'expired' WHERE id = %s")


_INSERT_ASSIGNMENT = Statement(
    "annotate_insert_assignment",
    "INSERT INTO annotate_assignment (lease, campaign_id, annotator_id, comparison_id, left_is_a, state,"
    " created_at, shown_at, expires_at) VALUES (%s, %s, %s, %s, %s, 'leased', %s, %s, %s)",
)


# A preloaded task comes on screen: the vote's clock starts, and its lease becomes a full one.
_SHOW = Statement(
    "annotate_show", "UPDATE annotate_assignment SET shown_at = %s, expires_at = %s WHERE lease = %s"
)


#: Left/right placement: its own generator, seeded from the OS (never affected by seeded builds).
_PLACEMENT = random.Random()


def _campaign_view(row) -> CampaignView:
    """The campaign part of the next-task state row (no second round trip)."""
    campaign_id, slug, status, quota, lease_seconds, tie, ratings, irrelevant, code, url, _, kind, own = row[1:14]
    pair_cap = row[22]
    return CampaignView(
        id=campaign_id,
        slug=slug,
        status=status,
        per_person_quota=quota,
        lease_seconds=lease_seconds,
        allow_tie=bool(tie),
        ask_ratings=bool(ratings),
        ask_irrelevant=bool(irrelevant),
        completion_code=code,
        completion_url=url,
        dataset_kind=kind,
        completion_code_per_annotator=bool(own),
        max_votes_per_model_pair=pair_cap,
    )


def _lease_one(
    batch: sql.Batch,
    annotator_id: int,
    campaign: CampaignView,
    now: datetime,
    expires_at: datetime,
    start: int = 0,
    shown: bool = False,
    held: int | None = None,
) -> TaskView | None:
    """Lease one more comparison to the annotator: fresh room first, then a slot whose lease expired; never one
    past the campaign's cap per model pair. ``shown``: the lease is the task on screen (else preloaded).

    The lease's row is written with the batch's next statement (or its commit). ``held``: the annotator's votes
    plus live leases, when known: below the cap, no model pair can be at it, and the statements skip counting
    (the cap's count per candidate is what the pick would otherwise pay on every call)."""
    campaign_id = campaign.id
    limit = campaign.max_votes_per_model_pair
    if held is not None and held < limit:
        limit = 0
    cap = [limit, annotator_id, limit]
    pick = _PICK_SKIP_LOCKED if _skip_locked() else _PICK_PLAIN
    batch.run((pick, [campaign_id, start, annotator_id, *cap, campaign_id, start, annotator_id, *cap]))
    row = batch.cursor.fetchone()
    if row is None:
        # The pool has no fresh room: take over an abandoned (expired) lease, keeping its slot.
        takeover = _TAKEOVER_SKIP_LOCKED if _skip_locked() else _TAKEOVER_PLAIN
        batch.run((takeover, [campaign_id, _db_datetime(now), annotator_id, *cap]))
        taken = batch.cursor.fetchone()
        if taken is None:
            return None
        batch.defer((_EXPIRE, [taken[0]]))
        row = taken[1:]
    comparison_id, text, shown_sets = row
    left_is_a = _PLACEMENT.random() < 0.5
    lease = uuid.uuid4()
    batch.defer(
        (
            _INSERT_ASSIGNMENT,
            [
                _db_lease(lease),
                campaign_id,
                annotator_id,
                comparison_id,
                left_is_a,
                _db_datetime(now),
                _db_datetime(now) if shown else None,
                _db_datetime(expires_at),
            ],
        )
    )
    return _task_view(lease, left_is_a, expires_at, text, shown_sets)


def assignment_next(*, annotator_id: int, campaign_slug: str) -> NextResult:
    """The annotator's current task and the one after it (both leased), or none when they are done.

    An annotator holding a live lease gets the same task back (resume); the task after it is leased
    too so the page can preload its images. The task on screen holds a lease of the campaign's
    ``lease_seconds`` from when it is first served as the current task (its ``shown_at``, the vote's
    server-side clock); the preloaded one a shorter lease (:data:`PREVIEW_LEASE_SECONDS`) until then.
    New leases go to comparisons the annotator has neither
    answered nor leased that still have room (``votes + live leases < votes_per_pair``), first in serving
    order from the annotator's ``start_position`` (random per annotator, so first tasks vary), wrapping
    around; leases whose time ran out are taken over once no fresh room is left. Nothing is leased beyond
    the per-person quota, nor beyond ``max_votes_per_model_pair`` comparisons of one model pair.
    Runs a bounded number of statements whatever the campaign size.
    Raises :class:`NoAnnotator` (unknown annotator for this campaign), :class:`CampaignNotOpen`, or
    :class:`ConsentRequired` (the campaign has a consent statement the annotator has not accepted).
    """
    now = timezone.now()
    with sql.hot_transaction() as batch:
        statement = _NEXT_STATE_LOCKED if connection.features.has_select_for_update_of else _NEXT_STATE
        batch.run((statement, [_db_datetime(now), annotator_id, campaign_slug, LEASES_AHEAD]))
        rows = batch.cursor.fetchall()
        if not rows:
            raise NoAnnotator("no annotator of this campaign in this browser: open the campaign's page first")
        campaign = _campaign_view(rows[0])
        votes_count = rows[0][0]
        if campaign.status != Campaign.Status.OPEN:
            raise CampaignNotOpen(f"campaign {campaign.slug!r} is not open for annotation")
        start, needs_consent = rows[0][19], bool(rows[0][20])
        if needs_consent:
            raise ConsentRequired("accept the study's consent statement on its first screen before starting")
        quota = campaign.per_person_quota or None
        live = [
            _task_view(_uuid(lease), bool(left_is_a), _aware(expires), text, shown)
            for lease, left_is_a, expires, text, shown in (row[14:19] for row in rows)
            if lease is not None
        ]
        full_lease = now + timedelta(seconds=campaign.lease_seconds)
        if live and rows[0][21] is None:
            # The preloaded task comes on screen now: its clock starts and its lease becomes a full one.
            live[0] = dataclasses.replace(live[0], expires_at=full_lease)
            batch.defer((_SHOW, [_db_datetime(now), _db_datetime(full_lease), _db_lease(live[0].lease)]))
        preview_lease = now + timedelta(seconds=min(campaign.lease_seconds, PREVIEW_LEASE_SECONDS))
        room = LEASES_AHEAD if quota is None else quota - votes_count - len(live)
        while len(live) < LEASES_AHEAD and room > 0:
            shown = not live
            task = _lease_one(
                batch, annotator_id, campaign, now, full_lease if shown else preview_lease, start, shown=shown,
                held=votes_count + len(live),
            )
            if task is None:
                break
            live.append(task)
            room -= 1
    code = campaign.completion_code
    if not live and campaign.completion_code_per_annotator:
        code = crowd.completion_code_for(base=code, campaign_id=campaign.id, annotator_id=annotator_id)
    return NextResult(
        campaign=campaign,
        task=live[0] if live else None,
        preview=live[1] if len(live) > 1 else None,
        done=votes_count,
        quota=quota,
        completion_code=code,
    )
