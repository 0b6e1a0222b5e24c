from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0009_jobs_training_job_and_reaper_state")]

    operations = [
        migrations.AddField(
            model_name="modelentry",
            name="licence",
            field=models.CharField(blank=True, default="", db_default="", max_length=100,
                                   help_text="The licence of the model's weights or code, as its authors name it."),
        ),
    ]
