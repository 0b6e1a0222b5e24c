"""Steering detection (hpbench/metrics/steering.py, annotate/quality.py): an annotator whose votes favour one
model beyond what the other annotators' votes on the same comparisons predict is flagged, and past a threshold
excluded; shown on the monitoring page."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from django.test import Client

from annotate import quality
from annotate.models import Annotator, Assignment, Vote
from hpbench.metrics.steering import SteeringVote, poisson_binomial_sf, steering_tests
from tests.annotate.conftest import enter, make_campaign, make_world, next_task, post_vote


def _tail_by_enumeration(ps: list[float], x: int) -> float:
    """P(sum >= x) over every outcome of the Bernoulli variables (the definition, written out)."""
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(ps)):
        if sum(outcome) >= x:
            total += math.prod(p if o else 1 - p for p, o in zip(ps, outcome, strict=True))
    return total


def test_the_poisson_binomial_tail_matches_enumeration():
    ps = [0.1, 0.5, 1 / 3, 2 / 3, 0.9, 0.25, 0.75]
    for x in range(-1, len(ps) + 2):
        assert poisson_binomial_sf(ps, x) == pytest.approx(_tail_by_enumeration(ps, x), abs=1e-12)


def test_the_test_of_a_hand_built_case():
    # Comparisons 1-4 between models 7 and 8; annotator 1 always picks model 7, the two others mostly do not.
    votes = []
    for c in range(1, 5):
        votes += [SteeringVote(1, c, 7, 8, "a"), SteeringVote(2, c, 7, 8, "b"), SteeringVote(3, c, 7, 8, "b")]
    votes.append(SteeringVote(2, 5, 7, 8, "a"))  # a lone vote: no test
    votes.append(SteeringVote(3, 6, 8, 7, "tie"))  # ties carry nothing
    tests = {(t.annotator, t.model): t for t in steering_tests(votes)}
    # Each of annotators 1-3 has 4 informative comparisons, tested for both models: 6 tests.
    assert len(tests) == 6
    favoured = tests[1, 7]
    # Under the null annotator 1 picks model 7 with probability 1/3 on each comparison: P(4 of 4) = (1/3)^4.
    assert favoured.votes == 4 and favoured.observed == 4 and favoured.expected == pytest.approx(4 / 3)
    assert favoured.p_value == pytest.approx((1 / 3) ** 4)
    assert favoured.p_adjusted == pytest.approx(6 * (1 / 3) ** 4)
    assert favoured.z == pytest.approx((4 - 4 / 3) / math.sqrt(4 * (1 / 3) * (2 / 3)))
    # Annotator 2 picked model 8 four times where it was picked with probability 2/3.
    assert tests[2, 8].p_value == pytest.approx((2 / 3) ** 4)
    assert tests[2, 7].p_value == 1.0  # at least 0 of 4: certain


@pytest.mark.django_db
def test_annotators_who_always_pick_one_model_are_flagged_and_excluded_and_shown(staff_user):
    """10 simulated annotators through the HTTP API on a 3-model campaign; 1 of them (10%) identifies model 0's
    sets perfectly (reading the database) and always picks them; the others pick the better set 80% of the
    time (a hidden merit per query and model, model 0 no better than the rest)."""
    world = make_world(n_queries=120, n_images=200, n_models=3)
    campaign = make_campaign(world, num_queries=120, votes_per_pair=5, per_person_quota=0, lease_seconds=600,
                             max_votes_per_model_pair=0)  # the cap (test_votepath) would stop the attackers early
    steered = world.models[0].pk
    rng = random.Random(7)
    merit = {(q.pk, m.pk): rng.random() for q in world.queries for m in world.models}
    clients = []
    for n in range(10):
        client = Client(enforce_csrf_checks=True)
        clients.append((client, enter(client, campaign, pid=f"SIM{n:04d}"), n < 1))
    active = list(clients)
    while active:
        for item in list(active):
            client, token, attacker = item
            task = next_task(client, campaign, token).json()["task"]
            if task is None:
                active.remove(item)
                continue
            lease = Assignment.objects.select_related("comparison").get(lease=task["lease"])
            c = lease.comparison
            left, right = (c.set_a_model_id, c.set_b_model_id)
            if not lease.left_is_a:
                left, right = right, left
            if attacker and steered in (left, right):
                choice = "left" if left == steered else "right"
            else:
                better = "left" if merit[c.query_id, left] > merit[c.query_id, right] else "right"
                choice = better if rng.random() < 0.8 else ("right" if better == "left" else "left")
            assert post_vote(client, token, lease=task["lease"], choice=choice, time_ms=4000).status_code == 201
    assert Vote.objects.filter(comparison__campaign=campaign).count() == 600

    attackers = set(Annotator.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)[:1])
    figures = quality.steering_figures(campaign=campaign)
    assert {a for a, t in figures.items() if t.p_adjusted < quality.STEERING_EXCLUDE_P} == attackers
    assert all(figures[a].model == steered for a in attackers)
    assert quality.quality_refresh(campaign=campaign) == sorted(attackers)
    assert set(Vote.objects.filter(comparison__campaign=campaign, excluded=True).values_list(
        "annotator_id", flat=True)) == attackers

    staff = Client()
    staff.force_login(staff_user)
    page = staff.get(f"/campaigns/{campaign.slug}/monitor/").content.decode()
    assert page.count(f"favours {world.models[0].name}:") == 1 and "votes excluded" in page
    # Staff's approval wins over the test.
    Annotator.objects.filter(pk__in=attackers).update(review=Annotator.Review.APPROVED)
    assert quality.quality_refresh(campaign=campaign) == []
    assert not Vote.objects.filter(comparison__campaign=campaign, excluded=True).exists()
