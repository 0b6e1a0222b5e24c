"""A campaign with votes laid down by hand (choices, times, hours), for the monitoring page's tests."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from annotate import aliases
from annotate.models import Annotator, Assignment, Comparison, Vote
from tests.browser.factory import PageCampaign, build_page_campaign

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@dataclass
class Voted:
    built: PageCampaign
    annotators: dict[str, Annotator]
    gold: Comparison


def cast(annotator: Annotator, comparison: Comparison, choice: str, *, time_ms: int, at: dt.datetime) -> Vote:
    assignment = Assignment.objects.create(
        campaign=comparison.campaign, annotator=annotator, comparison=comparison, left_is_a=True,
        state=Assignment.State.SUBMITTED, expires_at=at + dt.timedelta(minutes=10),
    )
    vote = Vote.objects.create(
        assignment=assignment, comparison=comparison, annotator=annotator, choice=choice, time_ms=time_ms,
        idempotency_key=uuid.uuid4().hex, excluded=annotator.flagged,
    )
    Vote.objects.filter(pk=vote.pk).update(created_at=at)
    Comparison.objects.filter(pk=comparison.pk).update(votes_count=comparison.votes.count())
    Annotator.objects.filter(pk=annotator.pk).update(votes_count=annotator.votes.count())
    return vote


def voted_campaign(tmp_path) -> Voted:
    """4 comparisons + 1 gold (answer 'a'), 3 votes wanted each; annotators ann, bob, cyd, dee.

    Votes (hour offsets from START): comparison 0: a a b; 1: b b b; 2: a b tie; 3: a (one vote);
    gold: ann a (right), bob b (wrong), cyd a, dee b. dee votes fast (300 ms); the rest slowly.
    """
    built = build_page_campaign(image_root=tmp_path, slug="monitored", queries=4, votes_per_pair=3, quota=0)
    campaign = built.campaign
    c = built.comparisons
    gold = Comparison.objects.create(
        campaign=campaign, query=c[0].query, reference_image=c[0].reference_image, text="gold", position=99,
        set_a_images=c[0].set_a_images, set_b_images=c[1].set_b_images, is_gold=True, gold_answer="a", open_slots=0,
    )
    aliases.fill_shown(campaign_id=campaign.pk, comparisons=[gold])  # as campaign_build does
    Comparison.objects.bulk_update([gold], ["shown"])
    people = {
        name: Annotator.objects.create(campaign=campaign, source=Annotator.Source.PROLIFIC, external_id_hash=name)
        for name in ("ann", "bob", "cyd", "dee")
    }
    plan = [
        ("ann", 0, "a", 0), ("bob", 0, "a", 0), ("cyd", 0, "b", 1),
        ("ann", 1, "b", 1), ("bob", 1, "b", 1), ("dee", 1, "b", 3),
        ("ann", 2, "a", 3), ("cyd", 2, "b", 3), ("dee", 2, "tie", 3),
        ("bob", 3, "a", 3),
    ]
    for name, index, choice, hour in plan:
        time_ms = 300 if name == "dee" else 4000 + 100 * index
        cast(people[name], c[index], choice, time_ms=time_ms, at=START + dt.timedelta(hours=hour, minutes=5))
    for name, choice in (("ann", "a"), ("bob", "b"), ("cyd", "a"), ("dee", "b")):
        cast(people[name], gold, choice, time_ms=300 if name == "dee" else 5000, at=START + dt.timedelta(hours=3))
    for comparison in [*c, gold]:  # open_slots + live leases + votes = votes_per_pair (none left below 0)
        comparison.refresh_from_db()
        comparison.open_slots = max(0, campaign.votes_per_pair - comparison.votes_count)
        comparison.save(update_fields=["open_slots"])
    for a in people.values():
        a.refresh_from_db()
    return Voted(built=built, annotators=people, gold=gold)
