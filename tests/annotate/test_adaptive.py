"""Adaptive overlap and informative pair selection in campaigns (annotate/services/, annotate/selection.py).

The leasing tests run on PostgreSQL, and once more on SQLite through
``test_the_leasing_guarantees_hold_on_sqlite`` (a subprocess with ``DATABASE_URL=sqlite://``).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from annotate.errors import LeaseExpired
from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from annotate.services.campaign_build import campaign_refresh
from annotate.services.entry import annotator_enter
from annotate.services.next_task import assignment_next
from annotate.services.votes import Caller, _lead_table, vote_record
from hpbench.metrics.adaptive import overlap_stop
from tests.annotate.conftest import make_campaign, make_world

pytestmark = pytest.mark.django_db

# min_vote_ms 0: these tests vote at once, and a vote too fast to count counts for neither side.
ADAPTIVE = {
    "adaptive_overlap": True, "min_votes_per_pair": 2, "votes_per_pair": 3, "overlap_confidence": 0.8, "min_vote_ms": 0,
}


def crowd(campaign: Campaign, pid: str) -> Annotator:
    return annotator_enter(
        campaign=campaign, params={"PROLIFIC_PID": pid, "STUDY_ID": "study1", "SESSION_ID": f"s-{pid}"}, user=None
    )


def vote_for(annotator: Annotator, lease, side: str):
    """Vote for stored set ``side`` ("a" / "b") whatever the placement shown."""
    left_is_a = Assignment.objects.get(lease=lease).left_is_a
    choice = "left" if (side == "a") == left_is_a else "right"
    return vote_record(
        lease=lease, caller=Caller(annotator_ids=frozenset({annotator.pk})), choice=choice,
        idempotency_key=f"k-{lease}",
    )


def task_of(annotator: Annotator, campaign: Campaign):
    return assignment_next(annotator_id=annotator.pk, campaign_slug=campaign.slug).task


def assert_invariants(campaign: Campaign) -> None:
    rows = Comparison.objects.filter(campaign=campaign).annotate(
        leased=Count("assignments", filter=Q(assignments__state="leased"), distinct=True),
        n_votes=Count("votes", distinct=True),
    )
    for c in rows:
        assert c.open_slots + c.leased + c.votes_count == c.target_votes, c.__dict__
        assert c.open_slots >= 0 and c.votes_count == c.n_votes <= c.target_votes <= campaign.votes_per_pair
        assert c.votes_a + c.votes_b <= c.votes_count


@pytest.mark.parametrize("max_votes", [3, 5, 9, 20])
@pytest.mark.parametrize("confidence", [0.6, 0.8, 0.9, 0.95])
def test_the_lead_table_agrees_with_overlap_stop_on_every_count(max_votes, confidence):
    table = _lead_table(max_votes, confidence)
    for a in range(max_votes + 1):
        for b in range(max_votes + 1 - a):
            lead = int(table[2 * (a + b) : 2 * (a + b) + 2])
            in_sql = a + b >= 1 and abs(a - b) >= lead
            rule = overlap_stop(a, b, min_votes=1, max_votes=max_votes, confidence=confidence) == "decided"
            assert in_sql == rule, (a, b)


def test_two_agreeing_votes_close_the_comparison_and_free_nobody_else_a_slot(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **ADAPTIVE)
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.target_votes, comparison.open_slots) == (2, 2)
    first, second, third = (crowd(campaign, p) for p in ("P1", "P2", "P3"))
    vote_for(first, task_of(first, campaign).lease, "a")
    vote_for(second, task_of(second, campaign).lease, "a")
    comparison.refresh_from_db()
    assert (comparison.votes_count, comparison.votes_a, comparison.target_votes, comparison.open_slots) == (2, 2, 2, 0)
    assert comparison.stop_reason == "decided"
    assert task_of(third, campaign) is None
    assert_invariants(campaign)


def test_a_split_opens_one_more_slot_up_to_the_maximum(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **ADAPTIVE)
    people = [crowd(campaign, f"P{i}") for i in range(5)]
    vote_for(people[0], task_of(people[0], campaign).lease, "a")
    vote_for(people[1], task_of(people[1], campaign).lease, "b")
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.target_votes, comparison.open_slots, comparison.stop_reason) == (3, 1, "")
    assert_invariants(campaign)
    vote_for(people[2], task_of(people[2], campaign).lease, "b")
    comparison.refresh_from_db()
    assert (comparison.votes_count, comparison.target_votes, comparison.open_slots) == (3, 3, 0)
    assert comparison.stop_reason == "max_votes"
    assert task_of(people[3], campaign) is None
    assert_invariants(campaign)


def test_a_fixed_overlap_campaign_keeps_its_targets_and_counts_no_sides(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, votes_per_pair=3)
    people = [crowd(campaign, f"P{i}") for i in range(3)]
    for p in people:
        vote_for(p, task_of(p, campaign).lease, "a")
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.votes_count, comparison.target_votes, comparison.votes_a, comparison.stop_reason) == (
        3, 3, 0, ""
    )


def test_a_decided_comparison_never_hands_an_abandoned_lease_to_someone_else(db):
    options = {**ADAPTIVE, "min_votes_per_pair": 1, "overlap_confidence": 0.7}  # one vote decides (0.75)
    options["min_votes_per_pair"] = 2  # two leases out at once...
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **options)
    Comparison.objects.filter(campaign=campaign).update(target_votes=2, open_slots=2)
    Campaign.objects.filter(pk=campaign.pk).update(min_votes_per_pair=1)  # ...and the first vote decides
    fast, slow, late = crowd(campaign, "FAST"), crowd(campaign, "SLOW"), crowd(campaign, "LATE")
    fast_task, slow_task = task_of(fast, campaign), task_of(slow, campaign)
    vote_for(fast, fast_task.lease, "b")
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.stop_reason, comparison.target_votes, comparison.open_slots) == ("decided", 2, 0)
    Assignment.objects.filter(lease=slow_task.lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert task_of(late, campaign) is None
    with pytest.raises(LeaseExpired):
        vote_for(slow, slow_task.lease, "a")
    assert_invariants(campaign)


def test_an_expired_lease_of_an_undecided_comparison_is_taken_over(db):
    campaign = make_campaign(make_world(n_queries=1), per_person_quota=0, **ADAPTIVE)
    slow, other, taker = crowd(campaign, "SLOW"), crowd(campaign, "OTHER"), crowd(campaign, "TAKER")
    slow_task = task_of(slow, campaign)
    vote_for(other, task_of(other, campaign).lease, "a")
    Assignment.objects.filter(lease=slow_task.lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = task_of(taker, campaign)
    assert taken is not None
    vote_for(taker, taken.lease, "a")
    comparison = Comparison.objects.get(campaign=campaign)
    assert (comparison.votes_count, comparison.stop_reason, comparison.target_votes) == (2, "decided", 2)
    assert_invariants(campaign)


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_keep_every_invariant_and_every_comparison_stops():
    campaign = make_campaign(make_world(n_queries=6), per_person_quota=0, **{**ADAPTIVE, "votes_per_pair": 5})
    annotators = [crowd(campaign, f"P{i}") for i in range(8)]
    errors = []

    def work(annotator, seed):
        rng = random.Random(seed)
        try:
            while (task := task_of(annotator, campaign)) is not None:
                vote_for(annotator, task.lease, rng.choice("ab"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(a, n)) for n, a in enumerate(annotators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_invariants(campaign)
    # Someone told "no task" while the others held the last leases leaves a split for later annotators.
    for n in range(40):
        late = crowd(campaign, f"LATE{n}")
        while (task := task_of(late, campaign)) is not None:
            vote_for(late, task.lease, "ab"[n % 2])
    assert_invariants(campaign)
    for c in Comparison.objects.filter(campaign=campaign):
        assert c.stop_reason in ("decided", "max_votes") and c.votes_count == c.target_votes
        counts = dict(Vote.objects.filter(comparison=c).values_list("choice").annotate(n=Count("id")))
        assert (counts.get("a", 0), counts.get("b", 0)) == (c.votes_a, c.votes_b)
        expected = overlap_stop(c.votes_a, c.votes_b, min_votes=2, max_votes=5, confidence=0.8)
        assert expected == c.stop_reason


@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("sqlite"), reason="this is the SQLite run")
def test_the_leasing_guarantees_hold_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "HPBENCH_TEST_DB_NAME": str(tmp_path / "test.sqlite3"),  # a file, as in production
        "HPBENCH_VAR_DIR": str(tmp_path / "var"),
        "CELERY_BROKER_KEY_PREFIX": f"hpbench-test-sqlite-adaptive-{os.getpid()}:",
    }
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not sqlite and not selection",
         str(Path(__file__).relative_to(root))],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.split("\n")[-2]


# --- Informative pair selection -------------------------------------------------------------------


def _drawn(campaign):
    return list(
        Comparison.objects.filter(campaign=campaign, is_gold=False)
        .order_by("query_id", "set_a_model_id", "set_b_model_id")
        .values_list("query_id", "set_a_model_id", "set_b_model_id", "selection_weight", "target_votes")
    )


def scored_world(**options):
    """A world whose runs store varied relevance scores (the conftest's are all 1), seeded."""
    import numpy as np

    from hpbench.catalog.models import RetrievalRun
    from hpbench.catalog.results import write_topk

    world = make_world(**options)
    rng = np.random.default_rng(3)
    for model in world.models:
        run = RetrievalRun.objects.get(model=model)
        queries = sorted(world.topk[model.pk])
        rows = [world.topk[model.pk][q] for q in queries]
        scores = -np.sort(-rng.random((len(rows), len(rows[0]))), axis=1)
        write_topk(run.results_path, query_ids=queries, image_ids=rows, scores=scores)
    return world


def test_informative_selection_is_reproducible_by_seed_and_stores_inverse_probability_weights(db):
    world = scored_world(n_queries=6, n_models=3)
    one = make_campaign(world, pair_selection="informative", num_queries=8, seed=7, random_share=0.25, **ADAPTIVE)
    two = make_campaign(world, pair_selection="informative", num_queries=8, seed=7, random_share=0.25, **ADAPTIVE)
    drawn = _drawn(one)
    assert drawn == _drawn(two) and 3 <= len(drawn) <= 13  # a Poisson round: 8 expected of 18 candidates
    assert len({(q, min(a, b), max(a, b)) for q, a, b, _w, _t in drawn}) == len(drawn)  # no pair twice
    assert len({q for q, *_ in drawn}) < len(drawn)  # several model pairs on one query
    assert one.selection_rounds == [{"take": 8, "expected": 8, "pool": 18, "population": 18}]
    for c in Comparison.objects.filter(campaign=one):
        # One round: the Horvitz-Thompson weight 1/π relative to uniform (N / n), at most 1 / random_share.
        assert c.selection_round == 1 and 0 < c.selection_pi <= 1
        assert c.selection_weight == pytest.approx((1 / c.selection_pi) * 8 / 18)
        assert c.selection_weight <= 1 / 0.25 + 1e-9 and c.target_votes == 2
    assert len({w for *_, w, _t in drawn}) > 1


def test_with_a_uniform_share_of_one_every_weight_is_one(db):
    world = make_world(n_queries=4, n_models=3)
    campaign = make_campaign(world, pair_selection="informative", num_queries=5, random_share=1.0)
    drawn = _drawn(campaign)
    assert drawn and [w for *_, w, _t in drawn] == pytest.approx([1.0] * len(drawn))


def test_a_refresh_adds_pairs_not_yet_compared_and_refuses_random_campaigns(db):
    world = make_world(n_queries=6, n_models=3)
    campaign = make_campaign(world, pair_selection="informative", num_queries=6)
    before = {(q, min(a, b), max(a, b)) for q, a, b, _w, _t in _drawn(campaign)}
    added = campaign_refresh(campaign=campaign, count=5)
    after = {(q, min(a, b), max(a, b)) for q, a, b, _w, _t in _drawn(campaign)}
    assert added >= 1 and before < after and len(after) == len(before) + added
    campaign.refresh_from_db()
    assert [r["take"] for r in campaign.selection_rounds] == [6, 5]
    assert set(Comparison.objects.filter(campaign=campaign).values_list("selection_round", flat=True)) == {1, 2}
    assert all(c.shown["a"] for c in Comparison.objects.filter(campaign=campaign))
    with pytest.raises(ValueError, match="informative"):
        campaign_refresh(campaign=make_campaign(world), count=1)
    with pytest.raises(ValueError, match="count"):
        campaign_refresh(campaign=campaign, count=0)


def test_a_refresh_draws_where_the_campaigns_preference_model_is_least_certain(db):
    """A finished preference model on a benchmark frozen from the campaign predicted every remaining candidate:
    certain (p = 0.999) for half, unsure (p = 0.5) for the other half. The refresh's p̂ is the model's: unsure
    candidates get the larger inclusion probabilities, and the round says which predictor chose them."""
    import numpy as np

    from hpbench.leaderboard.models import PreferenceModel
    from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
    from hpbench.leaderboard.services.preference_models import preference_model_store

    world = scored_world(n_queries=12, n_models=3)
    campaign = make_campaign(world, pair_selection="informative", num_queries=6, seed=3, random_share=0.05)
    compared = {(q, min(a, b), max(a, b)) for q, a, b, _w, _t in _drawn(campaign)}
    pks = sorted(m.pk for m in world.models)
    remaining = [(q.pk, a, b) for q in world.queries for i, a in enumerate(pks) for b in pks[i + 1:]
                 if (q.pk, a, b) not in compared]
    unsure = set(remaining[::2])
    image = world.queries[0].reference_id
    benchmark = benchmark_store(name=f"pm-sel-{campaign.pk}", source="campaign", dataset=world.dataset,
                                campaign=campaign, pairs=[PairSpec(reference_id=image, text="t", set1=(image,),
                                                                   set2=(image,), preference=1)]).benchmark
    # The leaderboard stores the model; its keyed candidate predictions become the campaign's selection predictor.
    row = PreferenceModel.objects.create(benchmark=benchmark, version=4, method="logreg-v2",
                                         status=PreferenceModel.Status.RUNNING)
    preference_model_store(model_id=row.pk, predictions=b"", feature_models=[], report={}, candidates={
        "keys": [list(c) for c in remaining], "p": [0.5 if c in unsure else 0.999 for c in remaining]})
    added = campaign_refresh(campaign=campaign, count=6)
    campaign.refresh_from_db()
    assert campaign.selection_rounds[-1]["predictor"] == f"preference model v4 on {benchmark.label}"
    assert campaign.selection_rounds[-1]["predicted"] == len(remaining)
    new = Comparison.objects.filter(campaign=campaign, selection_round=2)
    assert new.count() == added >= 1
    pi = {(c.query_id, min(c.set_a_model_id, c.set_b_model_id), max(c.set_a_model_id, c.set_b_model_id)):
          c.selection_pi for c in new}
    unsure_pi = [v for k, v in pi.items() if k in unsure]
    sure_pi = [v for k, v in pi.items() if k not in unsure]
    # sqrt(0.25) against sqrt(0.999 * 0.001): an unsure candidate is ~16x as likely to be drawn.
    assert len(unsure_pi) > len(sure_pi)
    assert not sure_pi or min(unsure_pi) > 5 * max(sure_pi)
    assert np.isfinite(unsure_pi).all()


# --- Settings in the admin and the API, figures -------------------------------------------------------


def test_the_options_are_in_the_campaign_admin_with_the_refresh_action(client, staff_user):
    client.force_login(staff_user)
    form = client.get("/admin/annotate/campaign/add/").content.decode()
    for field in ("adaptive_overlap", "min_votes_per_pair", "overlap_confidence", "pair_selection", "random_share"):
        assert f'name="{field}"' in form
    make_campaign(make_world(), build=False)
    assert "action_refresh_pairs" in client.get("/admin/annotate/campaign/").content.decode()


def test_staff_read_the_options_in_the_api_and_adaptive_progress_in_the_figures(client, staff_user):
    campaign = make_campaign(make_world(n_queries=2), per_person_quota=0, **ADAPTIVE)
    people = [crowd(campaign, f"P{i}") for i in range(2)]
    first = Comparison.objects.filter(campaign=campaign).order_by("position").first()
    for person in people:
        assignment_next(annotator_id=person.pk, campaign_slug=campaign.slug)
    for assignment in Assignment.objects.filter(comparison=first):
        vote_for(Annotator.objects.get(pk=assignment.annotator_id), assignment.lease, "a")
    client.force_login(staff_user)
    detail = client.get(f"/api/annotate/campaigns/{campaign.slug}").json()
    assert (detail["adaptive_overlap"], detail["min_votes_per_pair"], detail["pair_selection"]) == (True, 2, "random")
    figures = detail["figures"]
    assert figures["stopped_decided"] == 1 and figures["complete_comparisons"] == 1
    assert figures["votes_wanted"] == 4 and figures["progress"] == pytest.approx(2 / 4)


def test_a_minimum_above_the_maximum_is_refused(db):
    with pytest.raises(ValueError, match="min_votes_per_pair"):
        make_campaign(make_world(), build=False, adaptive_overlap=True, min_votes_per_pair=4, votes_per_pair=3)


def test_gold_tasks_keep_fixed_overlap_in_an_adaptive_campaign(db):
    campaign = make_campaign(make_world(n_queries=8), per_person_quota=0, gold_share=0.2, **ADAPTIVE)
    gold = Comparison.objects.filter(campaign=campaign, is_gold=True).first()
    assert (gold.target_votes, gold.open_slots) == (3, 3)
    people = [crowd(campaign, f"P{i}") for i in range(3)]
    for person in people:
        Assignment.objects.create(
            campaign=campaign, annotator=person, comparison=gold, left_is_a=True,
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        Comparison.objects.filter(pk=gold.pk).update(open_slots=gold.open_slots - 1)
        gold.refresh_from_db()
    for assignment in Assignment.objects.filter(comparison=gold)[:2]:
        vote_for(Annotator.objects.get(pk=assignment.annotator_id), assignment.lease, "a")
    gold.refresh_from_db()
    assert (gold.votes_count, gold.votes_a, gold.target_votes, gold.stop_reason) == (2, 2, 3, "")
    assert_invariants(campaign)
