"""Fewer index writes and more in-place (HOT) updates on the annotation hot path.

A lease rewrites its comparison's row (``open_slots``, a column in ``comparison_pool_idx``'s predicate)
and a vote rewrites its assignment's (``state``): PostgreSQL then writes an entry into every index of the
table. Indexes that another index's prefix already serves are dropped: the campaign, reference-image and
model-entry foreign keys of ``annotate_comparison``, the annotator key of ``annotate_assignment``, and on
``annotate_vote`` the annotator key, a second index on the comparison key and the ``LIKE`` index Django
adds beside the unique idempotency key (nothing searches keys by prefix).

The vote's counter updates (``votes_count`` on the comparison and the annotator) touch no indexed column:
they stay on the same page (no index writes) when the page has room, which a fill factor keeps for rows
written from now on.
"""

import django.db.models.deletion
from django.db import migrations, models


def _like_indexes(schema_editor) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'annotate_vote'"
            " AND indexname LIKE 'annotate_vote_idempotency_key_%%_like'"
        )
        return [name for (name,) in cursor.fetchall()]


def lean(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _like_indexes(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
    schema_editor.execute("ALTER TABLE annotate_comparison SET (fillfactor = 80)")
    schema_editor.execute("ALTER TABLE annotate_annotator SET (fillfactor = 70)")


def unlean(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    if not _like_indexes(schema_editor):
        schema_editor.execute(
            "CREATE INDEX annotate_vote_idempotency_key_5108f061_like"
            " ON annotate_vote (idempotency_key varchar_pattern_ops)"
        )
    schema_editor.execute("ALTER TABLE annotate_comparison RESET (fillfactor)")
    schema_editor.execute("ALTER TABLE annotate_annotator RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ('annotate', '0002_vacuum_the_task_pool_often'),
        ('catalog', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(lean, unlean),
        migrations.AlterField(
            model_name='assignment',
            name='annotator',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='annotate.annotator'),
        ),
        migrations.AlterField(
            model_name='comparison',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='comparisons', to='annotate.campaign'),
        ),
        migrations.AlterField(
            model_name='comparison',
            name='reference_image',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.image'),
        ),
        migrations.AlterField(
            model_name='comparison',
            name='set_a_model',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.modelentry'),
        ),
        migrations.AlterField(
            model_name='comparison',
            name='set_b_model',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.modelentry'),
        ),
        migrations.AlterField(
            model_name='vote',
            name='annotator',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='votes', to='annotate.annotator'),
        ),
        migrations.AlterField(
            model_name='vote',
            name='comparison',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='votes', to='annotate.comparison'),
        ),
    ]
