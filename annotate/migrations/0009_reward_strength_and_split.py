"""A tie or both-bad vote has no strength (NULL); a prompt's evaluation split is assigned when first needed."""

from django.db import migrations, models

import django.core.validators


def clear_meaningless_strengths(apps, schema_editor):
    PairwiseChoice = apps.get_model("annotate", "PairwiseChoice")
    PairwiseChoice.objects.exclude(choice__in=["a", "b"]).update(strength=None)


def restore_default_strengths(apps, schema_editor):
    PairwiseChoice = apps.get_model("annotate", "PairwiseChoice")
    PairwiseChoice.objects.filter(strength__isnull=True).update(strength=2)


def unassign_splits(apps, schema_editor):
    # Nothing ever set a split: every "train" is the old column default, not a decision.
    Prompt = apps.get_model("annotate", "Prompt")
    Prompt.objects.update(split="")


def default_splits(apps, schema_editor):
    Prompt = apps.get_model("annotate", "Prompt")
    Prompt.objects.filter(split="").update(split="train")


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0008_manager_query_kind_labels"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="pairwisechoice", name="pairwise_strength_1_to_3"),
        migrations.AlterField(
            model_name="pairwisechoice",
            name="strength",
            field=models.PositiveSmallIntegerField(
                blank=True,
                default=None,
                null=True,
                validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3)],
            ),
        ),
        migrations.RunPython(clear_meaningless_strengths, restore_default_strengths),
        migrations.AddConstraint(
            model_name="pairwisechoice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("choice__in", ("a", "b")), ("strength__gte", 1), ("strength__isnull", False), ("strength__lte", 3)),
                    models.Q(models.Q(("choice__in", ("a", "b")), _negated=True), ("strength__isnull", True)),
                    _connector="OR",
                ),
                name="pairwise_strength_only_for_a_or_b",
            ),
        ),
        migrations.AlterField(
            model_name="prompt",
            name="split",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.RunPython(unassign_splits, default_splits),
    ]
