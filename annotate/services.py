"""Writes of the annotation feature: building campaigns, crowd entry, leasing tasks and recording votes.

The two hot paths (:func:`assignment_next`, :func:`vote_record`) run a fixed number of SQL statements
whatever the campaign's size: the pick walks the partial index ``comparison_pool_idx`` in serving order
and stops at the first comparison with room that the annotator has not seen, skipping rows other
transactions hold (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotate import aliases, crowd, identity
from annotate.errors import (
    AlreadyAnswered,
    BuildError,
    CampaignNotOpen,
    ConsentRequired,
    InvalidVote,
    LeaseExpired,
    LeaseNotFound,
    NoAnnotator,
    NotYourLease,
)
from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from hpbench import dispatch, sql
from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
from hpbench.catalog.query_text import query_text
from hpbench.inputs import text_problem
from hpbench.sql import Statement

log = logging.getLogger(__name__)

#: How many leases an annotator holds at once: the task on screen and the next one (preloaded).
LEASES_AHEAD = 2

ProgressCallback = Callable[[float], None]


# --- Text and URLs shown to annotators --------------------------------------------------------


def image_url(token: str) -> str:
    """The URL an annotator's page loads an image from: its campaign token (annotate/aliases.py), never the id."""
    return aliases.image_url(token)


# --- Campaign lifecycle -----------------------------------------------------------------------


def campaign_create(
    *,
    slug: str,
    name: str,
    dataset: Dataset,
    models: list[ModelEntry],
    created_by=None,
    **options,
) -> Campaign:
    """Create a draft campaign comparing ``models`` (at least two) on ``dataset``.

    ``options`` are other :class:`Campaign` fields (split, set_size, num_queries, votes_per_pair, ...).
    Raises ``ValueError`` for fewer than two distinct models.
    """
    if len({m.pk for m in models}) < 2:
        raise ValueError("a campaign compares at least two different models")
    if options.get("adaptive_overlap") and options.get("min_votes_per_pair", 2) > options.get("votes_per_pair", 3):
        raise ValueError("min_votes_per_pair must be at most votes_per_pair with adaptive overlap")
    if options.get("pair_selection", "random") not in ("random", "informative"):
        raise ValueError(f"pair_selection must be 'random' or 'informative', got {options['pair_selection']!r}")
    with transaction.atomic():
        campaign = Campaign.objects.create(slug=slug, name=name, dataset=dataset, created_by=created_by, **options)
        campaign.models.set(models)
    return campaign


def campaign_build_enqueue(*, campaign: Campaign) -> bool:
    """Mark the campaign queued for building and dispatch the Celery task after commit.

    Returns False (and enqueues nothing) when a build is already queued or running.
    """
    changed = (
        Campaign.objects.filter(pk=campaign.pk)
        .exclude(build_status__in=[Campaign.BuildStatus.QUEUED, Campaign.BuildStatus.RUNNING])
        .update(build_status=Campaign.BuildStatus.QUEUED, build_error="", build_progress=0.0)
    )
    if changed:
        dispatch.task_send_on_commit(dispatch.CAMPAIGN_BUILD, campaign.pk)
    return bool(changed)


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Open, close or reopen a campaign. Opening requires a built campaign (``ValueError`` otherwise)."""
    if status not in Campaign.Status.values:
        raise ValueError(f"unknown campaign status {status!r} (expected one of {Campaign.Status.values})")
    if status == Campaign.Status.OPEN and not Comparison.objects.filter(campaign=campaign).exists():
        raise ValueError(f"campaign {campaign.slug!r} has no comparisons yet: build it before opening it")
    Campaign.objects.filter(pk=campaign.pk).update(status=status, updated_at=timezone.now())
    campaign.status = status
    return campaign


def _latest_runs(campaign: Campaign, models: list[ModelEntry]) -> dict[int, RetrievalRun]:
    runs: dict[int, RetrievalRun] = {}
    for model in models:
        run = (
            RetrievalRun.objects.filter(
                model=model, dataset=campaign.dataset, split=campaign.split, status=RetrievalRun.Status.FINISHED
            )
            .exclude(results_path="")
            .order_by("-finished_at", "-created_at", "-pk")
            .first()
        )
        if run is None:
            raise BuildError(
                f"model {model.name!r} has no finished retrieval run on {campaign.dataset.name}/{campaign.split}"
            )
        runs[model.pk] = run
    return runs


def campaign_build(*, campaign: Campaign, progress: ProgressCallback | None = None) -> int:
    """Create the campaign's comparisons; returns how many exist afterwards.

    For ``num_queries`` queries sampled (with the campaign's seed) from those every chosen model's latest
    finished run covers, a pair of two different models is drawn and each contributes its top ``set_size``
    images; pairs whose two sets hold the same images are skipped. Gold comparisons (``gold_share`` of
    the total) oppose the target plus images meeting the request to unrelated images of the category, on
    queries not otherwise sampled where there are enough (so no query is shown twice). Every image shown gets
    its per-campaign token (``annotate.aliases``) in the comparison's ``shown`` payload.
    With ``pair_selection = "informative"`` the campaign's ``num_queries`` comparisons are instead drawn from every
    (covered query, model pair) by :mod:`annotate.selection` (a query may then be compared for several pairs), each
    storing its ``selection_weight``; they are drawn once (a rebuild adds nothing; :func:`campaign_refresh` does).
    Every comparison starts at :func:`campaign_initial_target` votes.
    Deterministic and idempotent: rebuilding creates only what is missing, never duplicates.
    Raises :class:`BuildError` naming what is missing (models, runs, queries).
    """
    from hpbench.catalog.results import read_topk_stored

    report = progress or (lambda fraction: None)
    models = list(campaign.models.order_by("pk"))
    if len(models) < 2:
        raise BuildError(f"campaign {campaign.slug!r} needs at least two models, has {len(models)}")
    runs = _latest_runs(campaign, models)
    k = campaign.set_size
    topks: dict[int, dict[int, list[int]]] = {}
    for model in models:
        run = runs[model.pk]
        try:
            topks[model.pk] = read_topk_stored(run.results_path).as_dict(k)
        except (OSError, KeyError, ValueError) as exc:
            raise BuildError(f"cannot read the results of run {run.pk} ({run.results_path}): {exc}") from exc
    covered = set.intersection(*(set(q for q, ids in t.items() if len(ids) >= k) for t in topks.values()))
    candidate_ids = sorted(
        Query.objects.filter(dataset=campaign.dataset, split=campaign.split, pk__in=covered).values_list(
            "pk", flat=True
        )
    )
    if not candidate_ids:
        raise BuildError(f"no query of {campaign.dataset.name}/{campaign.split} is covered by every model's latest run")
    rng = random.Random(campaign.seed)
    target = campaign_initial_target(campaign=campaign)
    if campaign.pair_selection == "informative":
        if Comparison.objects.filter(campaign=campaign).exists():
            return Comparison.objects.filter(campaign=campaign).count()  # drawn once; campaign_refresh adds more
        drawn = _informative_draw(
            campaign, models, runs, candidate_ids, campaign.num_queries, topks, seed=campaign.seed & 0xFFFFFFFF
        )
        chosen = list(dict.fromkeys(d.query_id for d in drawn))
    else:
        chosen = rng.sample(candidate_ids, min(campaign.num_queries, len(candidate_ids)))
    report(0.05)

    rows: list[Comparison] = []
    queries = Query.objects.in_bulk(chosen)
    if campaign.pair_selection == "informative":
        by_pk = {m.pk: m for m in models}
        rows = _comparison_rows(campaign, drawn, by_pk, queries, topks, target, rng)
    else:
        for query_id in chosen:
            query = queries[query_id]
            model_a, model_b = rng.sample(models, 2)
            set_a = topks[model_a.pk][query_id][:k]
            set_b = topks[model_b.pk][query_id][:k]
            seed = rng.getrandbits(48)
            position = rng.getrandbits(48)
            if set(set_a) == set(set_b):
                continue
            rows.append(
                Comparison(
                    campaign=campaign,
                    query_id=query_id,
                    reference_image_id=query.reference_id,
                    text=query_text(protocol=campaign.dataset.protocol, captions=query.captions),
                    position=position,
                    set_a_images=set_a,
                    set_b_images=set_b,
                    set_a_model=model_a,
                    set_b_model=model_b,
                    seed=seed,
                    open_slots=target,
                    target_votes=target,
                    shows_reference=query.reference_id in set_a or query.reference_id in set_b,
                )
            )
    report(0.3)
    share = campaign.gold_share
    if share > 0 and rows:
        n_gold = max(1, round(len(rows) * share / (1.0 - share)))
        # Gold tasks on queries no model pair is compared on, where there are enough: an annotator shown the
        # same reference and text twice would know one of the two tasks is gold.
        chosen_set = set(chosen)
        spare = [q for q in candidate_ids if q not in chosen_set]
        queries.update(Query.objects.in_bulk(spare))
        rows.extend(_gold_comparisons(campaign, spare, chosen, queries, topks, n_gold, rng))
    aliases.fill_shown(campaign_id=campaign.pk, comparisons=rows)
    report(0.6)
    batch = 2000
    for start in range(0, len(rows), batch):
        Comparison.objects.bulk_create(rows[start : start + batch], ignore_conflicts=True)
        report(0.6 + 0.4 * min(1.0, (start + batch) / len(rows)))
    return Comparison.objects.filter(campaign=campaign).count()


def campaign_initial_target(*, campaign: Campaign) -> int:
    """Votes a new model comparison asks for: ``min_votes_per_pair`` with adaptive overlap, else ``votes_per_pair``
    (gold tasks always ask ``votes_per_pair``)."""
    if campaign.adaptive_overlap:
        return min(campaign.min_votes_per_pair, campaign.votes_per_pair)
    return campaign.votes_per_pair


def _full_topks(runs: dict[int, RetrievalRun]) -> dict[int, dict[int, tuple[list[int], list[float]]]]:
    from hpbench.catalog.results import read_topk

    out = {}
    for pk, run in runs.items():
        topk = read_topk(run.results_path)
        out[pk] = {
            int(q): (ids.tolist(), scores.tolist())
            for q, ids, scores in zip(topk.query_ids, topk.image_ids, topk.scores, strict=True)
        }
    return out


def _informative_draw(campaign, models, runs, query_ids, take, topks, *, seed) -> list:
    """The next ``take`` comparisons by informative selection (annotate/selection.py), reproducible by ``seed``."""
    import numpy as np

    from annotate import selection

    model_pks = [m.pk for m in models]
    existing = set()
    for q, a, b in Comparison.objects.filter(campaign=campaign, is_gold=False).values_list(
        "query_id", "set_a_model_id", "set_b_model_id"
    ):
        existing.add((q, min(a, b), max(a, b)))
    candidates = selection.informative_candidates(
        model_pks=model_pks, query_ids=query_ids, topks=topks, set_size=campaign.set_size, existing=existing
    )
    return selection.informative_select(
        campaign=campaign,
        model_pks=model_pks,
        candidates=candidates,
        topks_full=_full_topks(runs),
        set_size=campaign.set_size,
        take=take,
        rng=np.random.default_rng(seed),
    )


def _comparison_rows(campaign, drawn, by_pk, queries, topks, target, rng: random.Random) -> list[Comparison]:
    k = campaign.set_size
    rows = []
    for d in drawn:
        query = queries[d.query_id]
        model_a, model_b = (by_pk[d.model_a], by_pk[d.model_b])
        if rng.random() < 0.5:
            model_a, model_b = model_b, model_a
        set_a, set_b = topks[model_a.pk][d.query_id][:k], topks[model_b.pk][d.query_id][:k]
        rows.append(
            Comparison(
                campaign=campaign,
                query_id=d.query_id,
                reference_image_id=query.reference_id,
                text=query_text(protocol=campaign.dataset.protocol, captions=query.captions),
                position=rng.getrandbits(48),
                set_a_images=set_a,
                set_b_images=set_b,
                shows_reference=query.reference_id in set_a or query.reference_id in set_b,
                set_a_model=model_a,
                set_b_model=model_b,
                seed=rng.getrandbits(48),
                open_slots=target,
                target_votes=target,
                selection_weight=d.weight,
            )
        )
    return rows


def campaign_refresh(*, campaign: Campaign, count: int) -> int:
    """Add ``count`` comparisons chosen by informative selection with the evidence gathered so far.

    Candidates are the (query, model pair)s the campaign does not compare yet; Bradley-Terry strengths and the
    predicted-preference fit come from its finished comparisons. New comparisons get random serving positions,
    as at build. Reproducible: the draw is seeded
    by the campaign's seed and how many comparisons it has. Returns how many were added.
    Raises ``ValueError`` unless the campaign uses informative selection and ``count >= 1``, and
    :class:`BuildError` as :func:`campaign_build` does.
    """
    from hpbench.catalog.results import read_topk

    if campaign.pair_selection != "informative":
        raise ValueError(f"campaign {campaign.slug!r} does not use informative pair selection")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1, got {count!r}")
    models = list(campaign.models.order_by("pk"))
    runs = _latest_runs(campaign, models)
    k = campaign.set_size
    topks = {pk: read_topk(run.results_path).as_dict(k) for pk, run in runs.items()}
    covered = set.intersection(*(set(q for q, ids in t.items() if len(ids) >= k) for t in topks.values()))
    query_ids = sorted(
        Query.objects.filter(dataset=campaign.dataset, split=campaign.split, pk__in=covered).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()  # one refresh at a time
        n_existing = Comparison.objects.filter(campaign=campaign).count()
        seed = [campaign.seed & 0xFFFFFFFF, n_existing]
        drawn = _informative_draw(campaign, models, runs, query_ids, count, topks, seed=seed)
        rng = random.Random(f"{campaign.seed}:{n_existing}")
        queries = Query.objects.in_bulk({d.query_id for d in drawn})
        rows = _comparison_rows(
            campaign, drawn, {m.pk: m for m in models}, queries, topks, campaign_initial_target(campaign=campaign), rng
        )
        aliases.fill_shown(campaign_id=campaign.pk, comparisons=rows)
        Comparison.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _gold_comparisons(
    campaign: Campaign,
    spare: list[int],
    chosen: list[int],
    queries: dict[int, Query],
    topks: dict[int, dict[int, list[int]]],
    n_gold: int,
    rng: random.Random,
) -> list[Comparison]:
    """Gold tasks: target + images meeting the request (those keeping the rest of the reference first) versus
    images of the same category meeting none of it, on ``spare`` queries (compared nowhere else) first, then on
    ``chosen`` ones."""
    k = campaign.set_size
    first = [q for q in spare if queries[q].target_id is not None]
    picked = rng.sample(first, min(n_gold, len(first)))
    if len(picked) < n_gold:
        then = [q for q in chosen if queries[q].target_id is not None]
        picked += rng.sample(then, min(n_gold - len(picked), len(then)))
    if not picked:
        return []
    is_demo = campaign.dataset.kind == Dataset.Kind.DEMO
    oracle = None
    if is_demo:
        try:
            from hpbench.catalog import oracle  # noqa: PLC0415 - written alongside; optional at import time
        except ImportError:
            oracle = None
    gallery = list(
        Image.objects.filter(dataset=campaign.dataset, split=campaign.split).values_list("pk", "category", "attributes")
    )
    by_category: dict[str, list[tuple[int, dict]]] = {}
    for pk, category, attributes in gallery:
        by_category.setdefault(category, []).append((pk, attributes or {}))
    attrs_of = {pk: attributes or {} for pk, _c, attributes in gallery}
    first_model = min(topks)
    out: list[Comparison] = []
    for query_id in picked:
        query = queries[query_id]
        pool = by_category.get(query.category) or [(pk, a) for pk, _c, a in gallery]
        good: list[int] = [query.target_id]
        requested: dict[str, str] = {}
        if oracle is not None:
            try:
                requested = oracle.requested_attributes(query.captions, attrs_of.get(query.reference_id))
            except ValueError:
                requested = {}
        if requested:
            # Images meeting the whole request, those that also keep the rest of the reference first.
            reference = attrs_of.get(query.reference_id) or {}
            matching = [pk for pk, a in pool if oracle.requested_met(a, requested) == len(requested)]
            rng.shuffle(matching)
            matching.sort(key=lambda pk: -oracle.relevance(attrs_of[pk], reference, requested))
            good += [pk for pk in matching if pk not in good and pk != query.reference_id][: k - 1]
        if len(good) < k:
            good += [pk for pk in topks[first_model][query_id] if pk not in good and pk != query.reference_id][
                : k - len(good)
            ]
        avoid = set(good) | {query.reference_id}
        for ranked in topks.values():
            avoid |= set(ranked.get(query_id, []))
        if requested:
            unrelated = [pk for pk, a in pool if pk not in avoid and oracle.requested_met(a, requested) == 0]
        else:
            unrelated = [pk for pk, _a in pool if pk not in avoid]
        if len(unrelated) < k:
            unrelated += [pk for pk, _a in pool if pk not in avoid and pk not in unrelated]
        if len(good) < k or len(unrelated) < k:
            continue
        bad = rng.sample(unrelated, k)
        rng.shuffle(good)
        good_is_a = rng.random() < 0.5
        out.append(
            Comparison(
                campaign=campaign,
                query_id=query_id,
                reference_image_id=query.reference_id,
                text=query_text(protocol=campaign.dataset.protocol, captions=query.captions),
                position=rng.getrandbits(48),
                set_a_images=good if good_is_a else bad,
                set_b_images=bad if good_is_a else good,
                is_gold=True,
                gold_answer="a" if good_is_a else "b",
                seed=rng.getrandbits(48),
                # Gold tasks keep fixed overlap: every annotator's gold accuracy needs them seen.
                open_slots=campaign.votes_per_pair,
                target_votes=campaign.votes_per_pair,
            )
        )
    return out


# --- Crowd entry ------------------------------------------------------------------------------

_CROWD_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")


def _hash_external_id(source: str, external_id: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{source}:{external_id}".encode(), hashlib.sha256).hexdigest()


def _param(params: Mapping[str, str], name: str, *, required: bool = False) -> str:
    value = (params.get(name) or "").strip()
    if required and not value:
        raise PermissionDenied(f"the link lacks {name}")
    if value and not _CROWD_ID_RE.match(value):
        raise PermissionDenied(f"{name} must be 1-100 letters, digits, '-' or '_'")
    return value


def annotator_enter(
    *, campaign: Campaign, params: Mapping[str, str], user=None, client_ip: str | None = None
) -> Annotator:
    """Create or resume the pseudonymous annotator for a crowd link or a logged-in user.

    ``params`` are the query parameters: Prolific's ``PROLIFIC_PID``/``STUDY_ID``/``SESSION_ID`` or
    MTurk's ``workerId``/``assignmentId``/``hitId``/``turkSubmitTo``; without them a logged-in ``user``
    enters as themselves. The crowd id is stored only as an HMAC. The campaign's crowd guards apply
    (``annotate.crowd``): study and session required and pinned as configured, a session never shared by two
    worker ids, and new identities rate-limited per campaign and per ``client_ip`` (none: no IP limit).
    Raises ``PermissionDenied`` with a message when the campaign is not open, the link is malformed (or an
    MTurk preview), refused by a guard, or nobody is known; ``annotate.errors.TooManyEntries`` (429) past a rate
    limit.
    """
    if campaign.status != Campaign.Status.OPEN:
        raise PermissionDenied(f"campaign {campaign.slug!r} is not open for annotation")
    fields: dict[str, str] = {}
    required = campaign.require_crowd_session
    if params.get("PROLIFIC_PID"):
        source, external = Annotator.Source.PROLIFIC, _param(params, "PROLIFIC_PID", required=True)
        fields = {
            "study_id": _param(params, "STUDY_ID", required=required),
            "session_id": _param(params, "SESSION_ID", required=required),
        }
        study, session, session_field = fields["study_id"], fields["session_id"], "session_id"
    elif params.get("workerId"):
        source, external = Annotator.Source.MTURK, _param(params, "workerId", required=True)
        assignment_id = (params.get("assignmentId") or "").strip()
        if assignment_id == "ASSIGNMENT_ID_NOT_AVAILABLE":
            raise PermissionDenied("this is an MTurk preview: accept the HIT to start")
        submit_to = (params.get("turkSubmitTo") or "").strip()
        if submit_to and not submit_to.startswith("https://"):
            raise PermissionDenied("turkSubmitTo must be an https:// URL")
        fields = {
            "assignment_id": _param(params, "assignmentId", required=required),
            "hit_id": _param(params, "hitId", required=required),
            "submit_to": submit_to[:300],
        }
        study, session, session_field = fields["hit_id"], fields["assignment_id"], "assignment_id"
    elif user is not None and user.is_authenticated:
        return _annotator_for_user(campaign, user)
    else:
        raise PermissionDenied("log in, or open the link from your crowd platform (it carries your worker id)")
    pinned = crowd.study_ids(campaign.crowd_study_ids)
    if pinned and study not in pinned:
        name = "STUDY_ID" if source == Annotator.Source.PROLIFIC else "hitId"
        raise PermissionDenied(f"this link's {name} is not this study's: open the link your study platform gives you")
    digest = _hash_external_id(source, external)
    annotator = Annotator.objects.filter(campaign=campaign, source=source, external_id_hash=digest).first()
    if annotator is None:
        if (
            session
            and Annotator.objects.filter(campaign=campaign, source=source, **{session_field: session})
            .exclude(external_id_hash=digest)
            .exists()
        ):
            name = "SESSION_ID" if source == Annotator.Source.PROLIFIC else "assignmentId"
            raise PermissionDenied(f"this link's {name} belongs to another participant")
        crowd.entry_allow(
            campaign_key=f"{campaign.pk}:{campaign.slug}", per_campaign=campaign.new_annotators_per_hour, ip=client_ip
        )
        try:
            with transaction.atomic():
                annotator = Annotator.objects.create(
                    campaign=campaign,
                    source=source,
                    external_id_hash=digest,
                    start_position=_start_position(campaign),
                    **fields,
                )
        except IntegrityError:  # a second tab of the same worker created it meanwhile
            annotator = Annotator.objects.get(campaign=campaign, source=source, external_id_hash=digest)
    else:
        changed = [name for name, value in fields.items() if value and getattr(annotator, name) != value]
        for name in changed:
            setattr(annotator, name, fields[name])
        if changed:
            annotator.save(update_fields=changed)
    return annotator


#: Per-annotator start of the pool scan: its own generator, seeded from the OS.
_START = random.Random()


def _start_position(campaign: Campaign) -> int:
    """A random serving position between the campaign's first and last, so new annotators do not all get the
    same first comparison (the pick scans the pool in serving order from here, then wraps around)."""
    from django.db.models import Max, Min

    bounds = Comparison.objects.filter(campaign=campaign).aggregate(low=Min("position"), high=Max("position"))
    if bounds["low"] is None:
        return 0
    return _START.randint(bounds["low"], bounds["high"])


def _annotator_for_user(campaign: Campaign, user) -> Annotator:
    annotator = Annotator.objects.filter(campaign=campaign, user=user).first()
    if annotator is not None:
        return annotator
    try:
        with transaction.atomic():
            return Annotator.objects.create(
                campaign=campaign, user=user, source=Annotator.Source.ACCOUNT, start_position=_start_position(campaign)
            )
    except IntegrityError:
        return Annotator.objects.get(campaign=campaign, user=user)


def annotator_for_request(request, campaign: Campaign) -> Annotator:
    """The annotator this request acts as for ``campaign``; remembers it for the browser (``annotate.identity``).

    Crowd parameters in ``request.GET`` create or resume a crowd annotator (the entry guards of
    :func:`annotator_enter` apply, with the request's client IP); otherwise the one this browser entered as;
    otherwise the logged-in user's own. Raises ``PermissionDenied`` with a message (campaign not open,
    malformed or refused link, nobody known) or ``TooManyEntries``.
    """
    params = request.GET
    annotator: Annotator | None = None
    if params.get("PROLIFIC_PID") or params.get("workerId"):
        annotator = annotator_enter(
            campaign=campaign, params=params, user=request.user, client_ip=crowd.client_ip(request)
        )
    else:
        if campaign.status != Campaign.Status.OPEN:
            raise PermissionDenied(f"campaign {campaign.slug!r} is not open for annotation")
        known = identity.remembered(request).get(campaign.slug)
        if known is not None:
            annotator = Annotator.objects.filter(pk=known, campaign=campaign).first()
        if annotator is None:
            annotator = annotator_enter(campaign=campaign, params={}, user=request.user)
    identity.remember(request, campaign.slug, annotator.pk)
    return annotator


# --- Next task --------------------------------------------------------------------------------


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
    " a.start_position, a.onboarded_at IS NULL AND c.consent_text <> ''"
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
# The first comparison with room in serving order from the annotator's start position, else from the start:
# two index-ordered scans, the second evaluated only when the first finds nothing.
_PICK_FROM = (
    "SELECT c.id FROM annotate_comparison c"
    " WHERE c.campaign_id = %s AND c.open_slots > 0 AND c.position {bound} %s AND NOT EXISTS ("
    "  SELECT 1 FROM annotate_assignment x WHERE x.annotator_id = %s AND x.comparison_id = c.id)"
    " ORDER BY c.position LIMIT 1{{lock}}"
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
    " ORDER BY a.expires_at LIMIT 1{lock}"
)
_TAKEOVER_SKIP_LOCKED = Statement("annotate_takeover", _TAKEOVER.format(lock=" FOR UPDATE OF a SKIP LOCKED"))
_TAKEOVER_PLAIN = Statement("annotate_takeover_plain", _TAKEOVER.format(lock=""))
_EXPIRE = Statement("annotate_expire", "UPDATE annotate_assignment SET state = 'expired' WHERE id = %s")
_INSERT_ASSIGNMENT = Statement(
    "annotate_insert_assignment",
    "INSERT INTO annotate_assignment (lease, campaign_id, annotator_id, comparison_id, left_is_a, state,"
    " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, 'leased', %s, %s)",
)

#: Left/right placement: its own generator, seeded from the OS (never affected by seeded builds).
_PLACEMENT = random.Random()


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _aware(value) -> datetime:
    """A datetime read by raw SQL: SQLite gives naive UTC (or text), PostgreSQL aware values."""
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _db_datetime(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _db_lease(value: uuid.UUID):
    return Assignment._meta.get_field("lease").get_db_prep_value(value, connection)


def _skip_locked() -> bool:
    return connection.features.has_select_for_update_skip_locked


def _campaign_view(row) -> CampaignView:
    """The campaign part of the next-task state row (no second round trip)."""
    campaign_id, slug, status, quota, lease_seconds, tie, ratings, irrelevant, code, url, _, kind, own = row[1:14]
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
    )


def _lease_one(
    batch: sql.Batch, annotator_id: int, campaign_id: int, now: datetime, expires_at: datetime, start: int = 0
) -> TaskView | None:
    """Lease one more comparison to the annotator: fresh room first, then a slot whose lease expired.

    The lease's row is written with the batch's next statement (or its commit)."""
    pick = _PICK_SKIP_LOCKED if _skip_locked() else _PICK_PLAIN
    batch.run((pick, [campaign_id, start, annotator_id, campaign_id, start, annotator_id]))
    row = batch.cursor.fetchone()
    if row is None:
        # The pool has no fresh room: take over an abandoned (expired) lease, keeping its slot.
        takeover = _TAKEOVER_SKIP_LOCKED if _skip_locked() else _TAKEOVER_PLAIN
        batch.run((takeover, [campaign_id, _db_datetime(now), annotator_id]))
        taken = batch.cursor.fetchone()
        if taken is None:
            return None
        batch.defer((_EXPIRE, [taken[0]]))
        row = taken[1:]
    comparison_id, text, shown = row
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
                _db_datetime(expires_at),
            ],
        )
    )
    return _task_view(lease, left_is_a, expires_at, text, shown)


def assignment_next(*, annotator_id: int, campaign_slug: str) -> NextResult:
    """The annotator's current task and the one after it (both leased), or none when they are done.

    An annotator holding a live lease gets the same task back (resume); the task after it is leased
    too so the page can preload its images. New leases go to comparisons the annotator has neither
    answered nor leased that still have room (``votes + live leases < votes_per_pair``), first in serving
    order from the annotator's ``start_position`` (random per annotator, so first tasks vary), wrapping
    around; leases whose time ran out are taken over once no fresh room is left. Nothing is leased beyond
    the per-person quota. Runs a bounded number of statements whatever the campaign size.
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
        room = LEASES_AHEAD if quota is None else quota - votes_count - len(live)
        # A preloaded task waits while the current one is worked on: give it two lease periods.
        expires_at = now + timedelta(seconds=campaign.lease_seconds * (1 if not live else 2))
        while len(live) < LEASES_AHEAD and room > 0:
            task = _lease_one(batch, annotator_id, campaign.id, now, expires_at, start)
            if task is None:
                break
            live.append(task)
            room -= 1
            expires_at = now + timedelta(seconds=campaign.lease_seconds * 2)
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


# --- Votes ------------------------------------------------------------------------------------


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


def vote_too_fast(*, min_ms: int, time_ms: int | None, leased_at: datetime, now: datetime) -> bool:
    """Whether a vote came faster than the campaign's ``min_ms`` (0: never): by the page's own clock
    (``time_ms``) or by the server's, since the task was leased (an upper bound of its time on screen)."""
    if not min_ms:
        return False
    return (now - leased_at).total_seconds() * 1000 < min_ms or (time_ms is not None and time_ms < min_ms)


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
    Raises :class:`InvalidVote` naming the field at fault."""
    allowed = ("left", "right", "tie") if allow_tie else ("left", "right")
    if choice not in allowed:
        raise InvalidVote(f"choice must be one of {', '.join(allowed)}; got {choice!r}")
    rating_left = _rating(rating_left, "rating_left", bool(ask_ratings))
    rating_right = _rating(rating_right, "rating_right", bool(ask_ratings))
    if not isinstance(irrelevant, bool):
        raise InvalidVote(f"irrelevant must be true or false, got {irrelevant!r}")
    if irrelevant and not ask_irrelevant:
        raise InvalidVote("irrelevant must be false: this campaign does not ask for it")
    if time_ms is not None and (
        isinstance(time_ms, bool) or not isinstance(time_ms, int) or not 0 <= time_ms <= 86_400_000
    ):
        raise InvalidVote(f"time_ms must be a whole number of milliseconds from 0 to 86400000, got {time_ms!r}")
    left_is_a = bool(left_is_a)
    return VoteValues(
        choice="tie" if choice == "tie" else ("a" if (choice == "left") == left_is_a else "b"),
        rating_a=rating_left if left_is_a else rating_right,
        rating_b=rating_right if left_is_a else rating_left,
        irrelevant=irrelevant,
        time_ms=time_ms,
    )


def _rating(value, name: str, asked: bool) -> int | None:
    if value is None:
        if asked:
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
    choice: str,
    idempotency_key: str,
    rating_left: int | None = None,
    rating_right: int | None = None,
    irrelevant: bool = False,
    time_ms: int | None = None,
) -> VoteResult:
    """Record the answer to a leased task, exactly once.

    ``choice`` is the side chosen on screen ("left", "right", or "tie" where allowed); it and the
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
    leased_at: datetime | str
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
    " s.created_at, c.min_vote_ms, c.gold_feedback, x.is_gold, x.gold_answer,"
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
_DECIDED = (
    "(votes_count + 1 >= %s AND ABS(votes_a + %s - votes_b - %s)"
    " >= CAST(COALESCE(NULLIF(SUBSTR(%s, 2 * (votes_a + votes_b + %s) + 1, 2), ''), '99') AS INTEGER))"
)
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
    too_fast = vote_too_fast(min_ms=row.min_vote_ms, time_ms=values.time_ms, leased_at=_aware(row.leased_at), now=now)
    if row.adaptive_overlap:
        # A flagged annotator's vote, or one too fast to count, counts towards the maximum but for neither side.
        params = _adaptive_count_params(
            row.comparison_id, values.choice, not (row.flagged or too_fast), row.min_votes_per_pair,
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


# --- Staff review of an annotator ---------------------------------------------------------------


def annotator_review(*, annotator: Annotator, decision: str) -> Annotator:
    """Record staff's decision on ``annotator`` and apply it at once: ``"excluded"`` flags the annotator and
    marks all their votes excluded (later votes too, as for any flagged annotator); ``"approved"`` unflags
    them and counts their votes again; ``""`` hands the decision back to the gold check
    (:func:`annotate.quality.quality_refresh`). Raises ``ValueError`` for any other decision.
    """
    if decision not in Annotator.Review.values:
        raise ValueError(f"decision must be one of 'approved', 'excluded' or '', got {decision!r}")
    with transaction.atomic():
        annotator = Annotator.objects.select_for_update().get(pk=annotator.pk)
        annotator.review = decision
        annotator.reviewed_at = timezone.now() if decision else None
        fields = ["review", "reviewed_at"]
        if decision:
            annotator.flagged = decision == Annotator.Review.EXCLUDED
            fields.append("flagged")
            Vote.objects.filter(annotator=annotator).update(excluded=annotator.flagged)
        annotator.save(update_fields=fields)
    if not decision:
        from annotate.quality import quality_refresh

        quality_refresh(campaign=annotator.campaign)
        annotator.refresh_from_db()
    return annotator
