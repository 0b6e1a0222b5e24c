"""Every existing image gets the listing its row records (its split and category).

Images an earlier import stored once although the split files listed them twice (FashionIQ) get their other
listings when the dataset is imported again; the rows alone do not say which they were.
"""

from django.db import migrations


def fill(apps, schema_editor):
    Image = apps.get_model("catalog", "Image")
    ImageListing = apps.get_model("catalog", "ImageListing")
    batch = []
    for image_id, dataset_id, split, category in Image.objects.values_list("id", "dataset_id", "split", "category"):
        batch.append(ImageListing(image_id=image_id, dataset_id=dataset_id, split=split, category=category))
        if len(batch) >= 5000:
            ImageListing.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    ImageListing.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0006_catzoo_image_listings")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
