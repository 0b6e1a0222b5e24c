"""Stored pairs get a category: their query's, else their reference image's (what the scores used until now).

HP-FashionIQ pairs imported before are filled from their reference image's row, which may name the other of
two categories FashionIQ lists the image under; importing the file again stores each question's own folder.
"""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def fill(apps, schema_editor):
    BenchmarkPair = apps.get_model("leaderboard", "BenchmarkPair")
    Query = apps.get_model("catalog", "Query")
    Image = apps.get_model("catalog", "Image")
    empty = BenchmarkPair.objects.filter(category="")
    empty.filter(query__isnull=False).update(
        category=Subquery(Query.objects.filter(pk=OuterRef("query_id")).values("category")[:1])
    )
    BenchmarkPair.objects.filter(category="").update(
        category=Subquery(Image.objects.filter(pk=OuterRef("reference_id")).values("category")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("leaderboard", "0013_catzoo_pair_category"),
        ("catalog", "0007_catzoo_fill_image_listings"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
