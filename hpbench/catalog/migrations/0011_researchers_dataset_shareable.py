from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0010_researchers_model_licence")]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="shareable",
            field=models.BooleanField(
                default=False, db_default=False, help_text="Its images may be redistributed: researchers download them with the "
                "request files (a generated demo dataset always may)."),
        ),
    ]
