"""Data migrations of annotate: 0005 (tokens and ``shown`` for old comparisons), 0010 (their vote targets)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotate.aliases import image_token


@pytest.mark.django_db(transaction=True)
def test_comparisons_built_before_tokens_get_them_from_the_migration():
    executor = MigrationExecutor(connection)
    before, after = [("annotate", "0003_leaner_indexes")], [("annotate", "0005_fill_campaign_image_tokens")]
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Dataset, Image, Query = (apps.get_model("catalog", name) for name in ("Dataset", "Image", "Query"))
        Campaign, Comparison = apps.get_model("annotate", "Campaign"), apps.get_model("annotate", "Comparison")
        dataset = Dataset.objects.create(name="old", kind="demo", image_root="/tmp")
        images = [
            Image.objects.create(dataset=dataset, name=f"i{n}", category="dress", split="val", file_path=f"i{n}.png")
            for n in range(5)
        ]
        query = Query.objects.create(
            dataset=dataset, key="q", split="val", category="dress", reference=images[0], target=images[1], captions=[]
        )
        campaign = Campaign.objects.create(slug="old", name="old", dataset=dataset)
        Comparison.objects.create(
            campaign=campaign, query=query, reference_image=images[0], text="t", position=1,
            set_a_images=[images[1].pk, images[2].pk], set_b_images=[images[3].pk, images[4].pk], open_slots=3,
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        comparison = apps.get_model("annotate", "Comparison").objects.get(campaign_id=campaign.pk)
        token = {i.pk: image_token(campaign_id=campaign.pk, image_id=i.pk) for i in images}
        assert comparison.shown == {
            "reference": token[images[0].pk],
            "a": [token[images[1].pk], token[images[2].pk]],
            "b": [token[images[3].pk], token[images[4].pk]],
        }
        stored = apps.get_model("annotate", "CampaignImage").objects.filter(campaign_id=campaign.pk)
        assert dict(stored.values_list("image_id", "token")) == token
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_comparisons_built_before_adaptive_overlap_target_their_campaigns_votes_per_pair():
    executor = MigrationExecutor(connection)
    before = [("annotate", "0009_campaign_build_claims_heartbeat")]
    after = [("annotate", "0011_fill_comparison_targets")]
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Dataset, Image, Query = (apps.get_model("catalog", name) for name in ("Dataset", "Image", "Query"))
        Campaign, Comparison = apps.get_model("annotate", "Campaign"), apps.get_model("annotate", "Comparison")
        dataset = Dataset.objects.create(name="old", kind="demo", image_root="/tmp")
        image = Image.objects.create(dataset=dataset, name="i", category="dress", split="val", file_path="i.png")
        query = Query.objects.create(
            dataset=dataset, key="q", split="val", category="dress", reference=image, target=image, captions=[]
        )
        for slug, per_pair in (("three", 3), ("five", 5)):
            campaign = Campaign.objects.create(slug=slug, name=slug, dataset=dataset, votes_per_pair=per_pair)
            Comparison.objects.create(
                campaign=campaign, query=query, reference_image=image, text="t", position=1,
                set_a_images=[], set_b_images=[], open_slots=per_pair - 1, votes_count=1,
            )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        rows = apps.get_model("annotate", "Comparison").objects.values_list("campaign__slug", "target_votes")
        assert dict(rows) == {"three": 3, "five": 5}
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_campaigns_built_before_the_steering_defence_keep_rank_order_and_their_queries_stay_hidden():
    executor = MigrationExecutor(connection)
    before = [("annotate", "0013_heldout_pool_models"), ("catalog", "0007_catzoo_fill_image_listings")]
    after = [("annotate", "0014_steering_shuffle_sets_and_reencoded_images")]
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Dataset, Image, Query = (apps.get_model("catalog", name) for name in ("Dataset", "Image", "Query"))
        Campaign, Comparison = apps.get_model("annotate", "Campaign"), apps.get_model("annotate", "Comparison")
        dataset = Dataset.objects.create(name="old", kind="demo", image_root="/tmp")
        image = Image.objects.create(dataset=dataset, name="i", category="dress", split="val", file_path="i.png")
        compared, other = (
            Query.objects.create(dataset=dataset, key=k, split="val", reference=image, target=image, captions=[])
            for k in ("compared", "other")
        )
        campaign = Campaign.objects.create(slug="old", name="old", dataset=dataset, status="closed")
        Comparison.objects.create(
            campaign=campaign, query=compared, reference_image=image, text="t", position=1,
            set_a_images=[], set_b_images=[], open_slots=0,
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        assert apps.get_model("annotate", "Campaign").objects.get(slug="old").shuffle_sets is False
        reserved = dict(apps.get_model("catalog", "Query").objects.values_list("key", "reserved"))
        assert reserved == {"compared": True, "other": False}
        assert apps.get_model("annotate", "Campaign")._meta.get_field("shuffle_sets").default is True
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
