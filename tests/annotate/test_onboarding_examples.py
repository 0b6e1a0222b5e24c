"""The first screen's worked example (picked by the demo oracle), estimated duration and contact (issue 23, item 9)."""

from __future__ import annotations

import pytest

from annotate import onboarding
from annotate.models import CampaignImage, Comparison
from hpbench.catalog.models import Image, Query
from hpbench.ops.demo_setup import demo_examples
from tests.annotate.conftest import make_campaign, make_world

pytestmark = pytest.mark.django_db


def test_the_demo_example_is_an_unused_query_with_good_partial_and_poor_images():
    world = make_world(n_queries=8, n_images=40)
    campaign = make_campaign(world, num_queries=3)
    demo_examples(campaign=campaign)
    campaign.refresh_from_db()
    example = campaign.examples
    assert example, "no example picked"
    query = Query.objects.get(dataset=world.dataset, reference_id=example["reference"])
    assert not Comparison.objects.filter(campaign=campaign, query=query).exists(), "the example gives a task away"
    # The request, read from the captions independently of the oracle: "is <colour>", "has <sleeves> sleeves".
    colour = query.captions[0].removeprefix("is ")
    sleeves = query.captions[1].removeprefix("has ").removesuffix(" sleeves")

    def met(pk: int) -> int:
        attributes = Image.objects.get(pk=pk).attributes
        return (attributes["colour"] == colour) + (attributes["sleeves"] == sleeves)

    assert [met(pk) for pk in example["good"]] == [2, 2]
    assert [met(pk) for pk in example["partial"]] == [1, 1]
    assert [met(pk) for pk in example["poor"]] == [0, 0]
    # Served under the campaign's opaque tokens, never by name.
    shown = onboarding.examples_shown(campaign=campaign)
    assert shown and shown["text"] == " and ".join(query.captions)
    tokens = set(CampaignImage.objects.filter(campaign=campaign).values_list("token", flat=True))
    urls = [shown["reference"], *(url for _kind, urls in shown["kinds"] for url in urls)]
    assert len(urls) == 7 and all(url.rsplit("/", 1)[1] in tokens for url in urls)
    assert not any("img" in url for url in urls)


def test_example_images_must_be_the_campaigns_dataset():
    world = make_world()
    other = make_world()
    campaign = make_campaign(world)
    with pytest.raises(ValueError, match="not images of the campaign's dataset"):
        onboarding.campaign_examples_set(campaign=campaign, reference=other.images[0].pk, text="is red",
                                         good=[], partial=[], poor=[])


def test_the_estimated_duration_is_the_quota_times_the_median_vote_time(world):
    campaign = make_campaign(world, per_person_quota=30)
    assert onboarding.estimated_minutes(campaign=campaign) == 6  # 30 x 12 s before any vote
    campaign.estimated_minutes = 9
    assert onboarding.estimated_minutes(campaign=campaign) == 9


def test_the_estimate_follows_the_median_vote_time(world, csrf_client):
    from tests.annotate.conftest import enter, next_task, post_vote

    campaign = make_campaign(world, per_person_quota=10)
    token = enter(csrf_client, campaign)
    times = [3000, 60_000, 18_000]
    for time_ms in times:
        lease = next_task(csrf_client, campaign, token).json()["task"]["lease"]
        assert post_vote(csrf_client, token, lease=lease, time_ms=time_ms).status_code == 201
    median_ms = sorted(times)[1]
    assert onboarding.estimated_minutes(campaign=campaign) == -(-10 * median_ms // 60_000) == 3
