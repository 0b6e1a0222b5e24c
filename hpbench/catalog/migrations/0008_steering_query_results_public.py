"""Query.results_public_at and Query.reserved (the private pool of campaign queries). Queries some campaign
already compares join the pool in annotate's migration 0012_steering."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0007_catzoo_fill_image_listings"),
    ]

    operations = [
        migrations.AddField(
            model_name="query",
            name="results_public_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="When its model results were first shown to someone other than staff."
            ),
        ),
        migrations.AddField(
            model_name="query",
            name="reserved",
            field=models.BooleanField(
                default=False,
                db_default=False,
                help_text="In the private pool of campaign queries (drawn, or kept for future builds): its model "
                "results and target are never shown publicly, even after the campaigns close.",
            ),
        ),
    ]
