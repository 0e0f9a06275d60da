from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotate.models.assignments import Assignment
from annotate.models.items import Query


class Annotation(models.Model):
    """One submitted answer to a query. Never edited in place: a correction supersedes it."""

    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations")
    client_key = models.CharField(max_length=100, help_text="Chosen by the client; a repeated submit with it stores nothing new.")
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Server-side time from assignment to submit.")
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["annotator", "client_key"], name="annotation_unique_client_key")]

    def __str__(self) -> str:
        return f"annotation {self.pk} of query {self.query_id}"


class PairwiseChoiceValue(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class PairwiseChoice(models.Model):
    """The pairwise part of an annotation, in the query's canonical order (a = position 0).

    `shown_choice` keeps what the annotator pressed, in the order they saw, for position-bias study.
    """

    annotation = models.OneToOneField(Annotation, on_delete=models.CASCADE, related_name="pairwise")
    choice = models.CharField(max_length=16, choices=PairwiseChoiceValue.choices)
    shown_choice = models.CharField(max_length=16, choices=PairwiseChoiceValue.choices)
    strength = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1), MaxValueValidator(3)])

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(strength__gte=1, strength__lte=3), name="pairwise_strength_1_to_3")
        ]

    def __str__(self) -> str:
        return f"{self.choice} (strength {self.strength}) on annotation {self.annotation_id}"
