"""Campaign building, leasing and vote recording (annotate/services/)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate.errors import AlreadyAnswered, BuildError, CampaignNotOpen, InvalidVote, LeaseExpired, NotYourLease
from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from annotate.services import next_task
from annotate.services.campaign_build import campaign_build
from annotate.services.campaigns import campaign_set_status
from annotate.services.entry import annotator_enter
from annotate.services.next_task import assignment_next
from annotate.services.votes import Caller, vote_record
from hpbench.catalog.models import RetrievalRun
from tests.annotate.conftest import make_campaign, make_world

pytestmark = pytest.mark.django_db


def crowd(campaign: Campaign, pid: str) -> Annotator:
    return annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": pid, "STUDY_ID": "study1", "SESSION_ID": f"s-{pid}"}, user=None
    )


def vote(annotator: Annotator, lease, choice: str = "left", key: str | None = None, **extra):
    return vote_record(
        lease=lease,
        caller=Caller(annotator_ids=frozenset({annotator.pk})),
        choice=choice,
        idempotency_key=key or f"k-{lease}",
        **extra,
    )


# --- Building -------------------------------------------------------------------------------


def test_it_builds_one_comparison_per_query_from_two_different_models_top_k(world):
    campaign = make_campaign(world)
    comparisons = list(Comparison.objects.filter(campaign=campaign))
    assert len(comparisons) == len(world.queries)
    for c in comparisons:
        assert c.set_a_model_id != c.set_b_model_id
        assert c.set_a_images == world.topk[c.set_a_model_id][c.query_id]
        assert c.set_b_images == world.topk[c.set_b_model_id][c.query_id]
        assert c.open_slots == campaign.votes_per_pair and not c.is_gold
        assert c.reference_image_id == c.query.reference_id
        assert c.text == "Is " + c.query.captions[0][3:] + " and " + c.query.captions[1]


def test_it_skips_pairs_whose_two_sets_are_identical(db):
    world = make_world(n_queries=5, identical_for=(1, 3))
    campaign = make_campaign(world)
    built = set(Comparison.objects.filter(campaign=campaign).values_list("query__key", flat=True))
    assert built == {"q0", "q2", "q4"}


def test_rebuilding_creates_nothing_new(world):
    campaign = make_campaign(world, gold_share=0.3)
    before = list(Comparison.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "set_a_images"))
    assert campaign_build(campaign=campaign) == len(before)
    after = list(Comparison.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "set_a_images"))
    assert after == before


def test_it_samples_num_queries_with_the_seed(db):
    world = make_world(n_queries=10)
    one = make_campaign(world, num_queries=4, seed=7)
    two = make_campaign(world, num_queries=4, seed=7)
    keys = lambda c: sorted(Comparison.objects.filter(campaign=c).values_list("query_id", flat=True))  # noqa: E731
    assert len(keys(one)) == 4 and keys(one) == keys(two)


def test_it_names_the_model_without_a_finished_run(world):
    RetrievalRun.objects.filter(model=world.models[1]).update(status=RetrievalRun.Status.FAILED)
    campaign = make_campaign(world, build=False)
    with pytest.raises(BuildError, match=world.models[1].name):
        campaign_build(campaign=campaign)


def test_gold_tasks_oppose_the_target_and_matching_images_to_unrelated_ones(db):
    oracle = pytest.importorskip("hpbench.catalog.oracle")
    world = make_world(n_queries=8, n_images=60)
    campaign = make_campaign(world, gold_share=0.5)
    golds = list(Comparison.objects.filter(campaign=campaign, is_gold=True).select_related("query"))
    assert len(golds) == Comparison.objects.filter(campaign=campaign, is_gold=False).count()
    attrs = {img.pk: img.attributes for img in world.images}
    for gold in golds:
        good, bad = (
            (gold.set_a_images, gold.set_b_images)
            if gold.gold_answer == "a"
            else (gold.set_b_images, gold.set_a_images)
        )
        assert gold.query.target_id in good
        assert gold.set_a_model_id is None and gold.set_b_model_id is None
        requested = oracle.requested_attributes(gold.query.captions, attrs[gold.query.reference_id])
        reference = attrs[gold.query.reference_id]
        assert all(oracle.requested_met(attrs[i], requested) == len(requested) for i in good)
        assert all(oracle.requested_met(attrs[i], requested) == 0 for i in bad)
        chosen = [oracle.relevance(attrs[i], reference, requested) for i in good if i != gold.query.target_id]
        others = [
            oracle.relevance(img.attributes, reference, requested)
            for img in world.images
            if img.category == gold.query.category
            and img.split == campaign.split
            and img.pk not in good
            and oracle.requested_met(img.attributes, requested) == len(requested)
        ]
        assert not others or min(chosen) >= max(others)  # the closest to the reference were chosen
        assert len(good) == len(bad) == campaign.set_size


def test_opening_an_unbuilt_campaign_is_refused(world):
    campaign = make_campaign(world, build=False)
    with pytest.raises(ValueError, match="build it before opening"):
        campaign_set_status(campaign=campaign, status=Campaign.Status.OPEN)


# --- Entry ----------------------------------------------------------------------------------


def test_crowd_entry_stores_only_a_hash_of_the_worker_id(world):
    campaign = make_campaign(world)
    annotator = crowd(campaign, "WORKER123")
    assert crowd(campaign, "WORKER123").pk == annotator.pk
    assert annotator.pseudonym.startswith("ann_") and "WORKER123" not in annotator.pseudonym
    assert "WORKER123" not in annotator.external_id_hash and len(annotator.external_id_hash) == 64
    mturk = annotator_enter(
        campaign=campaign, params={"workerId": "W1", "assignmentId": "A1", "hitId": "H1"}, user=None
    )
    assert mturk.source == "mturk" and mturk.assignment_id == "A1"


# --- Leasing --------------------------------------------------------------------------------


def test_next_leases_a_task_and_the_following_one_and_resumes_them(world):
    campaign = make_campaign(world)
    annotator = crowd(campaign, "P1")
    first = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
    assert first.task is not None and first.preview is not None
    assert Assignment.objects.filter(annotator=annotator, state="leased").count() == 2
    again = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
    assert (again.task.lease, again.preview.lease) == (first.task.lease, first.preview.lease)
    vote(annotator, first.task.lease)
    after = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
    assert after.task.lease == first.preview.lease and after.done == 1


def test_choices_map_back_to_the_stored_set_in_both_placements(world, monkeypatch):
    import itertools
    import random

    class Alternating(random.Random):  # both placements, deterministically (a fair coin flakes 1 in 32)
        draws = itertools.cycle([0.2, 0.8])

        def random(self) -> float:
            return next(self.draws)

    monkeypatch.setattr(next_task, "_PLACEMENT", Alternating())
    campaign = make_campaign(world, votes_per_pair=1, per_person_quota=1)
    seen = set()
    for i in range(len(world.queries)):
        annotator = crowd(campaign, f"P{i}")
        task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
        assignment = Assignment.objects.select_related("comparison").get(lease=task.lease)
        c = assignment.comparison
        assert task.left == (c.shown["a"] if assignment.left_is_a else c.shown["b"])
        vote(annotator, task.lease, "left")
        seen.add(assignment.left_is_a)
        assert Vote.objects.get(assignment=assignment).choice == ("a" if assignment.left_is_a else "b")
    assert seen == {True, False}


def test_no_comparison_is_offered_beyond_the_votes_wanted(world):
    campaign = make_campaign(world, votes_per_pair=2, per_person_quota=0)
    leased = []
    for i in range(5):
        annotator = crowd(campaign, f"P{i}")
        while True:
            result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
            if result.task is None:
                break
            vote(annotator, result.task.lease)
            leased.append(result.task.lease)
    counts = list(Comparison.objects.filter(campaign=campaign).values_list("votes_count", flat=True))
    assert counts == [2] * len(world.queries)
    assert Vote.objects.count() == 2 * len(world.queries)


def test_an_expired_lease_returns_to_the_pool_and_can_no_longer_be_answered(world):
    campaign = make_campaign(world, votes_per_pair=1, per_person_quota=0)
    slow = crowd(campaign, "SLOW")
    # The slow annotator leases two tasks; the others take every other comparison.
    first = assignment_next(annotator_id=slow.pk, campaign_slug=campaign.slug)
    other = crowd(campaign, "FAST")
    while (r := assignment_next(annotator_id=other.pk, campaign_slug=campaign.slug)).task:
        vote(other, r.task.lease)
    assert Vote.objects.count() == len(world.queries) - 2
    Assignment.objects.filter(annotator=slow).update(expires_at=timezone.now() - timedelta(seconds=1))
    taker = crowd(campaign, "TAKER")
    taken = assignment_next(annotator_id=taker.pk, campaign_slug=campaign.slug)
    assert {taken.task.lease, taken.preview.lease}.isdisjoint({first.task.lease, first.preview.lease})
    assert Assignment.objects.filter(annotator=slow, state="expired").count() == 2
    with pytest.raises(LeaseExpired, match="expired"):
        vote(slow, first.task.lease)
    vote(taker, taken.task.lease)
    vote(taker, taken.preview.lease)
    assert list(Comparison.objects.filter(campaign=campaign).values_list("votes_count", flat=True)) == [1] * 6


def test_the_quota_ends_the_work_with_the_completion_code(world):
    campaign = make_campaign(world, per_person_quota=3, completion_code="C0DE42")
    annotator = crowd(campaign, "P1")
    for _ in range(3):
        result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
        vote(annotator, result.task.lease)
    assert Assignment.objects.filter(annotator=annotator).count() == 3  # no lease beyond the quota
    result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
    assert result.task is None and result.done == 3 and result.quota == 3


def test_a_closed_campaign_leases_nothing(world):
    campaign = make_campaign(world)
    annotator = crowd(campaign, "P1")
    campaign_set_status(campaign=campaign, status=Campaign.Status.CLOSED)
    with pytest.raises(CampaignNotOpen):
        assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)


def test_next_runs_the_same_number_of_queries_for_a_small_and_a_large_campaign(db):
    counts = []
    for n in (5, 150):
        world = make_world(n_queries=n, n_images=max(40, 2 * n + 2))
        campaign = make_campaign(world, per_person_quota=0)
        warm = crowd(campaign, "WARM")
        assignment_next(annotator_id=warm.pk, campaign_slug=campaign.slug)
        annotator = crowd(campaign, "P1")
        with CaptureQueriesContext(connection) as first:
            result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
        vote(annotator, result.task.lease)
        with CaptureQueriesContext(connection) as steady:
            assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
        counts.append((len(first), len(steady)))
    assert counts[0] == counts[1]


# --- Votes ----------------------------------------------------------------------------------


def test_a_replayed_vote_is_recorded_once(world):
    campaign = make_campaign(world)
    annotator = crowd(campaign, "P1")
    task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
    first = vote(annotator, task.lease, key="same")
    second = vote(annotator, task.lease, key="same")
    assert first.created and not second.created
    assert Vote.objects.count() == 1
    assert Comparison.objects.get(assignments__lease=task.lease).votes_count == 1
    with pytest.raises(AlreadyAnswered, match="already answered"):
        vote(annotator, task.lease, key="another")


def test_a_key_reused_for_another_task_is_refused(world):
    campaign = make_campaign(world)
    annotator = crowd(campaign, "P1")
    result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
    vote(annotator, result.task.lease, key="k1")
    with pytest.raises(AlreadyAnswered, match="idempotency_key"):
        vote(annotator, result.preview.lease, key="k1")
    assert Assignment.objects.get(lease=result.preview.lease).state == "leased"


@pytest.mark.parametrize(
    ("options", "fields", "message"),
    [
        ({}, {"choice": "tie"}, "choice must be one of left, right"),
        ({}, {"choice": "a"}, "choice must be one of"),
        ({}, {"rating_left": 3}, "does not ask for ratings"),
        (
            {"ask_ratings": True},
            {"rating_left": 6, "rating_right": 1},
            "rating_left must be a whole number from 1 to 5",
        ),
        ({"ask_ratings": True}, {"rating_left": 2}, "rating_right is required"),
        ({}, {"irrelevant": True}, "does not ask for it"),
        ({}, {"time_ms": -5}, "time_ms must be"),
    ],
)
def test_invalid_values_are_refused_with_a_message(world, options, fields, message):
    campaign = make_campaign(world, **options)
    annotator = crowd(campaign, "P1")
    task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
    fields = {"choice": "left", **fields}
    with pytest.raises(InvalidVote, match=message):
        vote(annotator, task.lease, **fields)
    assert not Vote.objects.exists()


def test_ratings_are_stored_against_the_sets_they_rate(world):
    campaign = make_campaign(world, ask_ratings=True, allow_tie=True, ask_irrelevant=True)
    annotator = crowd(campaign, "P1")
    task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
    vote(annotator, task.lease, "tie", rating_left=2, rating_right=5, irrelevant=True, time_ms=1234)
    stored = Vote.objects.select_related("assignment").get()
    left_is_a = stored.assignment.left_is_a
    assert (stored.rating_a, stored.rating_b) == ((2, 5) if left_is_a else (5, 2))
    assert stored.choice == "tie" and stored.irrelevant and stored.time_ms == 1234


def test_someone_elses_lease_is_refused(world):
    campaign = make_campaign(world)
    owner, thief = crowd(campaign, "OWNER"), crowd(campaign, "THIEF")
    task = assignment_next(annotator_id=owner.pk, campaign_slug=campaign.slug).task
    with pytest.raises(NotYourLease):
        vote(thief, task.lease)


# --- Concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_lease_a_comparison_needing_one_vote_exactly_once():
    world = make_world(n_queries=1)
    campaign = make_campaign(world, votes_per_pair=1)
    annotators = [crowd(campaign, f"P{i}") for i in range(8)]
    barrier = threading.Barrier(len(annotators))
    results, errors = [], []

    def grab(annotator):
        try:
            barrier.wait()
            result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
            if result.task is not None:
                vote(annotator, result.task.lease)
                vote(annotator, result.task.lease)  # a retry
            results.append(result.task)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=grab, args=(a,)) for a in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(task is not None for task in results) == 1
    assert Assignment.objects.count() == 1 and Vote.objects.count() == 1
    assert Comparison.objects.get().votes_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_exceed_the_votes_wanted():
    world = make_world(n_queries=6)
    campaign = make_campaign(world, votes_per_pair=2, per_person_quota=0)
    annotators = [crowd(campaign, f"P{i}") for i in range(6)]
    errors = []

    def work(annotator):
        try:
            while (r := assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)).task:
                vote(annotator, r.task.lease)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(a,)) for a in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(Comparison.objects.values_list("votes_count", flat=True)) == [2] * 6
    assert Vote.objects.count() == 12
    assert Vote.objects.values("annotator", "comparison").distinct().count() == 12


# --- Outside an atomic block (as in production: BEGIN and COMMIT travel with the statements) ----------


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_replay_records_once_and_a_reused_key_writes_nothing():
    campaign = make_campaign(make_world(), per_person_quota=0)
    annotator = crowd(campaign, "P1")
    result = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug)
    assert vote(annotator, result.task.lease, key="k1").created
    assert not vote(annotator, result.task.lease, key="k1").created
    with pytest.raises(AlreadyAnswered, match="idempotency_key"):
        vote(annotator, result.preview.lease, key="k1")  # the unique key fails at commit
    assert Assignment.objects.get(lease=result.preview.lease).state == "leased"
    assert Comparison.objects.get(assignments__lease=result.preview.lease).votes_count == 0
    assert Annotator.objects.get(pk=annotator.pk).votes_count == 1 and Vote.objects.count() == 1
    assert vote(annotator, result.preview.lease, key="k2").created  # the connection is still usable


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_refused_vote_writes_nothing():
    campaign = make_campaign(make_world())
    annotator = crowd(campaign, "P1")
    task = assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task
    with pytest.raises(InvalidVote, match="choice must be one of"):
        vote(annotator, task.lease, choice="tie")
    assert not Vote.objects.exists() and Assignment.objects.get(lease=task.lease).state == "leased"
    assert vote(annotator, task.lease).created


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_an_expired_lease_is_taken_over():
    world = make_world(n_queries=2)
    campaign = make_campaign(world, votes_per_pair=1, per_person_quota=0)
    slow = crowd(campaign, "SLOW")
    first = assignment_next(annotator_id=slow.pk, campaign_slug=campaign.slug)
    Assignment.objects.filter(annotator=slow).update(expires_at=timezone.now() - timedelta(seconds=1))
    taker = crowd(campaign, "TAKER")
    taken = assignment_next(annotator_id=taker.pk, campaign_slug=campaign.slug)
    assert taken.task is not None and taken.preview is not None
    assert Assignment.objects.filter(annotator=slow, state="expired").count() == 2
    with pytest.raises(LeaseExpired):
        vote(slow, first.task.lease)
    vote(taker, taken.task.lease)
    vote(taker, taken.preview.lease)
    assert list(Comparison.objects.values_list("votes_count", flat=True)) == [1, 1]


@pytest.mark.django_db
def test_the_task_pool_is_vacuumed_after_a_fixed_number_of_dead_rows():
    if connection.vendor != "postgresql":
        pytest.skip("autovacuum is PostgreSQL's (test_services_on_sqlite.py runs this file on SQLite too)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'annotate_comparison'")
        options = cursor.fetchone()[0]
    assert "autovacuum_vacuum_scale_factor=0" in options and "autovacuum_vacuum_threshold=5000" in options
