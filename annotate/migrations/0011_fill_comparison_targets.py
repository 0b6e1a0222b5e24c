"""Comparisons built before adaptive overlap ask for their campaign's votes_per_pair: their target is that."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def fill_targets(apps, schema_editor):
    Campaign = apps.get_model("annotate", "Campaign")
    Comparison = apps.get_model("annotate", "Comparison")
    per_pair = Campaign.objects.filter(pk=OuterRef("campaign_id")).values("votes_per_pair")[:1]
    Comparison.objects.filter(target_votes=0).update(target_votes=Subquery(per_pair))


class Migration(migrations.Migration):
    dependencies = [("annotate", "0010_adaptive_overlap_and_pair_selection")]

    operations = [migrations.RunPython(fill_targets, migrations.RunPython.noop)]
