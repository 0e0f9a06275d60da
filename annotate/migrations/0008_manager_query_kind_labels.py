from django.db import migrations, models


class Migration(migrations.Migration):
    """QueryKind.SINGLE is labelled as the settings page and the API's errors say it."""

    dependencies = [
        ("annotate", "0007_claim_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="query",
            name="kind",
            field=models.CharField(
                choices=[("pairwise", "Pairwise"), ("ranking", "Ranking"), ("single", "One response at a time")],
                default="pairwise",
                max_length=16,
            ),
        ),
    ]
