"""Give the comparisons built before per-campaign image tokens their tokens and ``shown`` payloads."""

import base64

from django.db import migrations
from django.utils.crypto import salted_hmac


def _token(campaign_id: int, image_id: int) -> str:
    # As annotate.aliases.image_token at the time of writing (a migration never changes with the code).
    digest = salted_hmac("annotate.aliases.image", f"{campaign_id}:{image_id}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def fill(apps, schema_editor):
    Comparison = apps.get_model("annotate", "Comparison")
    CampaignImage = apps.get_model("annotate", "CampaignImage")
    campaign_ids = Comparison.objects.filter(shown={}).values_list("campaign_id", flat=True).distinct()
    for campaign_id in list(campaign_ids):
        comparisons = list(Comparison.objects.filter(campaign_id=campaign_id, shown={}))
        ids = {c.reference_image_id for c in comparisons}
        for c in comparisons:
            ids.update(c.set_a_images)
            ids.update(c.set_b_images)
        tokens = dict(
            CampaignImage.objects.filter(campaign_id=campaign_id, image_id__in=ids).values_list("image_id", "token")
        )
        new = [CampaignImage(campaign_id=campaign_id, image_id=i, token=_token(campaign_id, i)) for i in ids - tokens.keys()]
        CampaignImage.objects.bulk_create(new, batch_size=2000)
        tokens.update({row.image_id: row.token for row in new})
        for c in comparisons:
            c.shown = {
                "reference": tokens[c.reference_image_id],
                "a": [tokens[i] for i in c.set_a_images],
                "b": [tokens[i] for i in c.set_b_images],
            }
        Comparison.objects.bulk_update(comparisons, ["shown"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("annotate", "0004_campaign_image_tokens")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
