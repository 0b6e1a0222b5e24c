"""Campaign.shuffle_sets (on for new campaigns; campaigns built before showed rank order, so theirs is off),
CampaignImage.stored_name (the re-encoded copy), and the queries campaigns already compare join the private pool
(Query.reserved): their results stay hidden after the campaign closes."""

from django.db import migrations, models


def reserve_compared_queries(apps, schema_editor):
    Query = apps.get_model("catalog", "Query")
    Comparison = apps.get_model("annotate", "Comparison")
    Query.objects.filter(pk__in=Comparison.objects.values("query_id")).update(reserved=True)


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0013_heldout_pool_models"),
        ("catalog", "0008_steering_query_results_public"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="shuffle_sets",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="shuffle_sets",
            field=models.BooleanField(
                default=True,
                help_text="Show each set's images in a random order (stored per comparison), not in the model's "
                "rank order, which can tell the model.",
            ),
        ),
        migrations.AddField(
            model_name="campaignimage",
            name="stored_name",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Media name of the re-encoded copy served to annotators (empty: the file itself, "
                "campaigns built before re-encoding).",
                max_length=200,
            ),
        ),
        migrations.RunPython(reserve_compared_queries, migrations.RunPython.noop),
    ]
