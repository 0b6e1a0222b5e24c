"""Imported benchmarks (the released HP-FashionIQ) have public labels."""

from django.db import migrations


def fill(apps, schema_editor):
    apps.get_model("leaderboard", "PreferenceBenchmark").objects.filter(source="imported").update(labels_public=True)


class Migration(migrations.Migration):
    dependencies = [("leaderboard", "0009_design_pair_design_labels_public_hidden_split")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
