"""The vote path against the attacks and bugs of issues 21 (item 9) and 22 (items 1-4): a changed answer applies the
stopping rule again, gold accuracy counts the first answer, too-fast votes are timed from when the task is served and
left out of what counts, a cap on one identity's comparisons per model pair, and identities that end.

Runs on PostgreSQL here and again on SQLite (tests/annotate/test_services_on_sqlite.py runs this file too).
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta

import pytest
from django.db.models import Count, F, Q
from django.test import Client
from django.utils import timezone
from scipy.stats import beta

from annotate import undo
from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from annotate.quality import annotator_figures
from annotate.services.entry import annotator_enter
from annotate.services.next_task import PREVIEW_LEASE_SECONDS, assignment_next
from annotate.services.votes import Caller, vote_record
from tests.annotate.conftest import make_campaign, make_world, next_task

pytestmark = pytest.mark.django_db

ADAPTIVE = {
    "adaptive_overlap": True, "min_votes_per_pair": 2, "votes_per_pair": 3, "overlap_confidence": 0.8, "min_vote_ms": 0,
}


def crowd(campaign: Campaign, pid: str) -> Annotator:
    return annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": pid, "STUDY_ID": "st", "SESSION_ID": f"s-{pid}"}, user=None
    )


def caller(annotator: Annotator) -> Caller:
    return Caller(annotator_ids=frozenset({annotator.pk}))


def screen_choice(lease, side: str) -> str:
    """The choice on screen ("left"/"right") that picks stored set ``side`` ("a"/"b") under the lease's placement."""
    left_is_a = Assignment.objects.get(lease=lease).left_is_a
    return "left" if (side == "a") == left_is_a else "right"


def vote_for(annotator: Annotator, lease, side: str, **extra):
    return vote_record(
        lease=lease, caller=caller(annotator), choice=screen_choice(lease, side), idempotency_key=str(uuid.uuid4()),
        **extra,
    )


def change_to(annotator: Annotator, lease, side: str):
    return undo.vote_replace(
        lease=lease, caller=caller(annotator), choice=screen_choice(lease, side), idempotency_key=str(uuid.uuid4())
    )


def task_of(annotator: Annotator, campaign: Campaign):
    return assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task


def expected_stop(a: int, b: int, n: int, *, min_votes: int, max_votes: int, confidence: float) -> str:
    """The stopping rule from its definition: decided once n >= min_votes and the posterior probability (uniform
    prior, Beta(a + 1, b + 1)) that the leading side is the majority reaches ``confidence``; else stopped at the
    maximum; else open ("")."""
    p_a = beta.sf(0.5, a + 1, b + 1)
    if n >= min_votes and a != b and max(p_a, 1 - p_a) >= confidence:
        return "decided"
    return "max_votes" if n >= max_votes else ""


def assert_slot_invariant(campaign: Campaign) -> None:
    rows = Comparison.objects.filter(campaign=campaign).annotate(
        leased=Count("assignments", filter=Q(assignments__state="leased"), distinct=True),
        n_votes=Count("votes", distinct=True),
    )
    for c in rows:
        assert c.open_slots + c.leased + c.votes_count == c.target_votes, c.__dict__
        assert c.open_slots >= 0 and c.votes_count == c.n_votes <= c.target_votes <= campaign.votes_per_pair


# --- Issue 21, item 9: a changed answer applies the stopping rule again -------------------------------------------


def test_a_decided_comparison_whose_answer_changes_to_a_split_reopens_for_a_third_vote(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **ADAPTIVE)
    first, second, third = (crowd(campaign, p) for p in ("P1", "P2", "P3"))
    vote_for(first, task_of(first, campaign).lease, "a")
    lease = task_of(second, campaign).lease
    vote_for(second, lease, "a")
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.stop_reason, comparison.open_slots) == ("decided", 0)
    assert task_of(third, campaign) is None

    change_to(second, lease, "b")  # 2-0 becomes 1-1: not decided, under the maximum of 3
    comparison.refresh_from_db()
    assert (comparison.votes_a, comparison.votes_b, comparison.votes_count) == (1, 1, 2)
    assert (comparison.stop_reason, comparison.target_votes, comparison.open_slots) == ("", 3, 1)
    assert_slot_invariant(campaign)

    vote_for(third, task_of(third, campaign).lease, "b")
    comparison.refresh_from_db()
    assert (comparison.votes_a, comparison.votes_b, comparison.stop_reason) == (1, 2, "max_votes")
    assert_slot_invariant(campaign)


def test_a_change_that_decides_an_open_comparison_closes_it(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **ADAPTIVE)
    first, second, third = (crowd(campaign, p) for p in ("P1", "P2", "P3"))
    vote_for(first, task_of(first, campaign).lease, "a")
    lease = task_of(second, campaign).lease
    vote_for(second, lease, "b")
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.stop_reason, comparison.target_votes, comparison.open_slots) == ("", 3, 1)

    change_to(second, lease, "a")  # 1-1 becomes 2-0: decided
    comparison.refresh_from_db()
    assert (comparison.votes_a, comparison.votes_b) == (2, 0)
    assert (comparison.stop_reason, comparison.target_votes, comparison.open_slots) == ("decided", 2, 0)
    assert task_of(third, campaign) is None
    assert_slot_invariant(campaign)


def test_with_answers_changed_at_random_every_stop_is_where_the_rule_puts_the_final_counts(db):
    """A simulation where the truth is known: whatever order votes and changes come in, each comparison ends
    with the stop reason the rule gives its final counts, and no comparison stays decided on a split."""
    rng = random.Random(21)
    campaign = make_campaign(make_world(n_queries=24), per_person_quota=0, **ADAPTIVE)
    people = [crowd(campaign, f"W{i}") for i in range(10)]
    active = list(people)
    changes = 0
    while active:
        person = rng.choice(active)
        task = task_of(person, campaign)
        if task is None:
            active.remove(person)
            continue
        vote_for(person, task.lease, rng.choice("aab"))
        if rng.random() < 0.4:
            change_to(person, task.lease, rng.choice("ab"))
            changes += 1
    assert changes >= 10
    Assignment.objects.filter(state="leased").delete()  # the previews nobody will answer
    for c in Comparison.objects.filter(campaign=campaign):
        counts = dict(Vote.objects.filter(comparison=c).values_list("choice").annotate(n=Count("id")))
        a, b = counts.get("a", 0), counts.get("b", 0)
        assert (c.votes_a, c.votes_b, c.votes_count) == (a, b, a + b)
        assert c.stop_reason == expected_stop(a, b, a + b, min_votes=2, max_votes=3, confidence=0.8), (a, b)


# --- Issue 22, item 2: gold accuracy counts the first answer --------------------------------------------------------


def test_a_gold_answer_changed_after_its_feedback_still_counts_as_wrong(db):
    world = make_world(n_queries=6)
    campaign = make_campaign(world, gold_share=0.5, gold_feedback=True, per_person_quota=0, min_vote_ms=0)
    blind = crowd(campaign, "blind")
    gold_seen = 0
    while (task := task_of(blind, campaign)) is not None:
        comparison = Assignment.objects.get(lease=task.lease).comparison
        if not comparison.is_gold:
            vote_for(blind, task.lease, "a")
            continue
        wrong = "b" if comparison.gold_answer == "a" else "a"
        assert vote_for(blind, task.lease, wrong).correct is False
        assert change_to(blind, task.lease, comparison.gold_answer).correct is True  # the feedback gave it away
        gold_seen += 1
    assert gold_seen >= 2
    (figures,) = [f for f in annotator_figures(campaign=campaign) if f.annotator_id == blind.pk]
    assert (figures.gold_votes, figures.gold_correct, figures.gold_accuracy) == (gold_seen, 0, 0.0)


# --- Issue 22, item 3: too-fast votes, timed from when the task is served -------------------------------------------


def test_the_preloaded_task_answered_back_to_back_is_too_fast_whatever_the_page_reports(db):
    campaign = make_campaign(make_world(n_queries=4), per_person_quota=0, min_vote_ms=400)
    bot = crowd(campaign, "bot")
    first = assignment_next(annotator_id=bot.pk, campaign_slug=campaign.slug)
    assert first.preview is not None
    time.sleep(0.5)
    vote_for(bot, first.task.lease, "a", time_ms=5000)  # 0.5 s on screen: not too fast
    second = task_of(bot, campaign)  # the preloaded task, leased 0.5 s ago, on screen only now
    vote_for(bot, second.lease, "a", time_ms=5000)  # the page claims 5 s
    fast = dict(Vote.objects.filter(annotator=bot).values_list("assignment__lease", "too_fast"))
    assert fast == {first.task.lease: False, second.lease: True}


def test_a_too_fast_vote_counts_for_no_benchmark_and_no_side(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **{**ADAPTIVE, "min_vote_ms": 60_000})
    people = [crowd(campaign, f"F{i}") for i in range(2)]
    for person in people:
        vote_for(person, task_of(person, campaign).lease, "a", time_ms=90_000)
    assert Vote.objects.filter(comparison__campaign=campaign, too_fast=True).count() == 2
    assert not Vote.objects.counted().filter(comparison__campaign=campaign).exists()
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.votes_count, comparison.votes_a, comparison.votes_b) == (2, 0, 0)


# --- Issue 22, item 1 (part): one identity's comparisons per model pair ----------------------------------------------


def test_an_identity_gets_at_most_the_cap_of_comparisons_of_one_model_pair(db):
    campaign = make_campaign(make_world(n_queries=8), per_person_quota=0, max_votes_per_model_pair=3, min_vote_ms=0)
    person = crowd(campaign, "steer")
    while (task := task_of(person, campaign)) is not None:
        vote_for(person, task.lease, "a")
    assert Vote.objects.filter(annotator=person).count() == 3
    other = crowd(campaign, "other")
    assert task_of(other, campaign) is not None  # the pool still has room for others


def test_the_cap_counts_a_model_pair_in_either_order_and_leaves_gold_tasks_alone(db):
    world = make_world(n_queries=12, n_models=3)
    campaign = make_campaign(world, per_person_quota=0, max_votes_per_model_pair=1, gold_share=0.25, min_vote_ms=0)
    person = crowd(campaign, "steer")
    while (task := task_of(person, campaign)) is not None:
        vote_for(person, task.lease, "a")
    pairs = [
        frozenset((a, b))
        for a, b in Vote.objects.filter(annotator=person, comparison__is_gold=False).values_list(
            "comparison__set_a_model", "comparison__set_b_model"
        )
    ]
    assert len(pairs) == len(set(pairs)) >= 2
    gold = Comparison.objects.filter(campaign=campaign, is_gold=True).count()
    assert gold >= 2 and Vote.objects.filter(annotator=person, comparison__is_gold=True).count() == gold


def test_an_abandoned_lease_is_not_taken_over_past_the_cap(db):
    campaign = make_campaign(
        make_world(n_queries=4), per_person_quota=0, votes_per_pair=1, max_votes_per_model_pair=2, min_vote_ms=0
    )
    idle = crowd(campaign, "idle")
    assignment_next(annotator_id=idle.pk, campaign_slug=campaign.slug)
    Assignment.objects.filter(annotator=idle).update(expires_at=timezone.now() - timedelta(seconds=1))
    Campaign.objects.filter(pk=campaign.pk).update(max_votes_per_model_pair=1)
    person = crowd(campaign, "steer")
    result = assignment_next(annotator_id=person.pk, campaign_slug=campaign.slug)
    assert result.task is not None and result.preview is None
    assert Assignment.objects.filter(annotator=idle, state="leased").count() == 2


def test_staff_read_the_cap_in_the_campaign_api(client, staff_user):
    campaign = make_campaign(make_world(n_queries=2), max_votes_per_model_pair=4)
    assert Campaign._meta.get_field("max_votes_per_model_pair").default == 10
    client.force_login(staff_user)
    assert client.get(f"/api/annotate/campaigns/{campaign.slug}").json()["max_votes_per_model_pair"] == 4


# --- Issue 22, item 4: identities -----------------------------------------------------------------------------------


def test_the_preloaded_task_holds_a_short_lease_until_it_is_served(db):
    campaign = make_campaign(make_world(n_queries=4), per_person_quota=0, lease_seconds=600, min_vote_ms=0)
    person = crowd(campaign, "P")
    before = timezone.now()
    first = assignment_next(annotator_id=person.pk, campaign_slug=campaign.slug)
    preview = Assignment.objects.exclude(lease=first.task.lease).get(annotator=person)
    assert preview.expires_at <= before + timedelta(seconds=PREVIEW_LEASE_SECONDS + 5)
    assert first.task.expires_at >= before + timedelta(seconds=600)
    vote_for(person, first.task.lease, "a")
    served = timezone.now()
    second = task_of(person, campaign)
    assert second.lease == preview.lease
    preview.refresh_from_db()
    assert preview.expires_at == second.expires_at >= served + timedelta(seconds=600)
    assert preview.shown_at is not None and preview.shown_at >= served


def test_an_idle_identitys_preloaded_slot_returns_to_the_pool_after_the_short_lease(db):
    campaign = make_campaign(
        make_world(n_queries=2), per_person_quota=0, votes_per_pair=1, lease_seconds=600, min_vote_ms=0
    )
    idle, person = crowd(campaign, "idle"), crowd(campaign, "P")
    assignment_next(annotator_id=idle.pk, campaign_slug=campaign.slug)  # holds both comparisons
    assert task_of(person, campaign) is None
    # PREVIEW_LEASE_SECONDS later (well under the 600 s lease): the preloaded slot is taken over.
    early = timedelta(seconds=PREVIEW_LEASE_SECONDS)
    Assignment.objects.filter(annotator=idle).update(expires_at=F("expires_at") - early)
    assert task_of(person, campaign) is not None


def test_every_annotator_gets_their_own_completion_code_by_default(db):
    campaign = make_campaign(make_world(n_queries=4), completion_code="HPB", per_person_quota=1, min_vote_ms=0)
    codes = set()
    for pid in ("A", "B"):
        person = crowd(campaign, pid)
        vote_for(person, task_of(person, campaign).lease, "a")
        result = assignment_next(annotator_id=person.pk, campaign_slug=campaign.slug)
        assert result.task is None
        codes.add(result.completion_code)
    assert len(codes) == 2 and all(code.startswith("HPB-") for code in codes)


def test_logging_out_ends_the_annotator_identity_of_the_browser(world, django_user_model):
    campaign = make_campaign(world)
    user = django_user_model.objects.create_user("first-person", password="pw-first-person-1")
    browser = Client()
    browser.force_login(user)
    assert browser.get(f"/api/annotate/campaigns/{campaign.slug}/enter").status_code == 200
    assert browser.cookies["hpbench_annotators"].value
    browser.post("/accounts/logout/")
    assert not browser.cookies["hpbench_annotators"].value  # deleted
    token = browser.get("/accounts/login/").cookies["csrftoken"].value
    refused = next_task(browser, campaign, token)
    assert refused.status_code == 403


def test_logging_in_ends_the_crowd_identity_the_browser_held(world, django_user_model):
    campaign = make_campaign(world)
    browser = Client()
    link = "PROLIFIC_PID=crowd1&STUDY_ID=s1&SESSION_ID=sess-crowd1"
    assert browser.get(f"/api/annotate/campaigns/{campaign.slug}/enter?{link}").status_code == 200
    django_user_model.objects.create_user("second-person", password="pw-second-person-2")
    browser.post("/accounts/login/", {"username": "second-person", "password": "pw-second-person-2"})
    assert not browser.cookies["hpbench_annotators"].value


def test_new_account_annotators_are_rate_limited_like_crowd_entries(world, django_user_model):
    campaign = make_campaign(world, new_annotators_per_hour=1)
    statuses = []
    for n in range(2):
        browser = Client()
        browser.force_login(django_user_model.objects.create_user(f"acct-{n}-{uuid.uuid4().hex[:6]}"))
        statuses.append(browser.get(f"/api/annotate/campaigns/{campaign.slug}/enter").status_code)
    assert statuses == [200, 429]
