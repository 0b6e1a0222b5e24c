"""Data: blank every stored link that is not an http(s) URL (a javascript: link rendered as href runs script)."""

from django.db import migrations


def clear_unsafe_links(apps, schema_editor):
    from hpbench.catalog.links import link_problem

    for model in (apps.get_model("catalog", "ModelEntry"), apps.get_model("leaderboard", "Submission")):
        for pk, link in model.objects.exclude(link="").values_list("pk", "link").iterator():
            if link_problem(link):
                model.objects.filter(pk=pk).update(link="")


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_base_model_and_http_links"),
        ("leaderboard", "0003_submission_link_http_only"),
    ]

    operations = [migrations.RunPython(clear_unsafe_links, migrations.RunPython.noop)]
