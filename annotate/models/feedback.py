from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotate.models.assignments import Assignment
from annotate.models.items import Query, Response
from annotate.rows import Columns


def current_annotation(prefix: str = "") -> models.Q:
    """An annotation that is still its annotator's answer: not superseded by a change, not rejected in review.

    `prefix` is the path from the model queried to the annotation, e.g. "annotation__" from a part.
    Reads of a study's labels use `study_label`, which adds the study and leaves gold queries out;
    this alone is for reads of one query's or one annotator's answers, gold ones included.
    """
    return models.Q(**{f"{prefix}superseded_by__isnull": True, f"{prefix}rejected_by__isnull": True})


def study_data_query(study, prefix: str = "") -> models.Q:
    """A query of `study` whose answers are data: not a gold query.

    Gold queries are quality control (services.gold): their answers are checked against a known
    answer, never used as labels. Every read of the study's data leaves them out with this one rule;
    only reads of gold itself (accuracy, gold counts, serving gold) say `is_gold` on their own.
    `prefix` is the path from the model queried to the query, e.g. "query__" from a QueryResponse.
    `study` may be a Study, its id, or OuterRef("pk") in a subquery.
    """
    return models.Q(**{f"{prefix}study": study, f"{prefix}is_gold": False})


def study_label(study, prefix: str = "") -> models.Q:
    """An annotation that is one of the study's labels: current (`current_annotation`) and of a
    query that is data (`study_data_query`), so never an answer to a gold query.

    `prefix` is the path from the model queried to the annotation, e.g. "annotation__" from a part.
    Every read of the study's labels (agreement, flags, aggregates, exports, training) filters with this.
    """
    return current_annotation(prefix) & study_data_query(study, f"{prefix}query__")


class Annotation(models.Model):
    """One submitted answer to a query. Never edited in place: a correction supersedes it."""

    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations")
    client_key = models.CharField(max_length=100, help_text="Chosen by the client; a repeated submit with it stores nothing new.")
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Server-side time from assignment to submit.")
    active_ms = models.PositiveIntegerField(null=True, blank=True, help_text="The client's own count of active time on task.")
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by")
    # Set when a reviewer rejects the answer: like a correction, it stops counting as a label but is kept.
    rejected_by = models.OneToOneField(
        "annotate.Review", null=True, blank=True, on_delete=models.PROTECT, related_name="rejected_annotation"
    )
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


# The choices that say which response is better; only they carry a strength.
ORDERED_CHOICES = ("a", "b")


class PairwiseChoice(models.Model):
    """The pairwise part of an annotation, in the query's canonical order (a = position 0).

    `shown_choice` keeps what the annotator pressed, in the order they saw, for position-bias study.
    `strength` (1-3: slightly, clearly, much better) belongs to an a/b choice; a tie or both-bad
    has none (NULL), since "how much better" means nothing there.
    """

    annotation = models.OneToOneField(Annotation, on_delete=models.CASCADE, related_name="pairwise")
    choice = models.CharField(max_length=16, choices=PairwiseChoiceValue.choices)
    shown_choice = models.CharField(max_length=16, choices=PairwiseChoiceValue.choices)
    strength = models.PositiveSmallIntegerField(
        null=True, blank=True, default=None, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                # isnull=False spelled out: in SQL a NULL strength makes "between 1 and 3" unknown, which a CHECK lets by.
                condition=models.Q(choice__in=ORDERED_CHOICES, strength__isnull=False, strength__gte=1, strength__lte=3)
                | models.Q(~models.Q(choice__in=ORDERED_CHOICES), strength__isnull=True),
                name="pairwise_strength_only_for_a_or_b",
            )
        ]

    def __str__(self) -> str:
        return f"{self.choice} (strength {self.strength}) on annotation {self.annotation_id}"


class RankingPart(models.Model):
    """A ranking as an ordered list of groups of response ids, best first; a group of two or more is a tie.

    Kept whole: its pairwise expansion is derived when exporting or training, never stored instead.
    """

    annotation = models.OneToOneField(Annotation, on_delete=models.CASCADE, related_name="ranking")
    groups = models.JSONField(default=list)
    cannot_rank_reason = models.TextField(blank=True, help_text="Set instead of groups when the annotator could not rank.")

    def __str__(self) -> str:
        return f"ranking on annotation {self.annotation_id}"


class SpanPart(models.Model):
    """A highlighted span of one response with an error category, in code-point offsets [start, end).

    start and end are null for a response-level label such as missing information.
    """

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="spans")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    start = models.PositiveIntegerField(null=True, blank=True)
    end = models.PositiveIntegerField(null=True, blank=True)
    category = models.CharField(max_length=64)
    note = models.TextField(blank=True)
    metadata = models.JSONField(
        default=dict, blank=True, help_text="Fields of imported feedback with no column here, kept so exports reproduce them."
    )

    class Meta:
        ordering = ["annotation_id", "response_id", "start", "id"]

    def __str__(self) -> str:
        return f"{self.category} [{self.start}, {self.end}) in response {self.response_id}"


class CritiquePart(models.Model):
    """A natural-language critique of one response, and optionally a revised version of it."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="critiques")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    critique = models.TextField(blank=True)
    revision = models.TextField(blank=True)

    class Meta:
        ordering = ["annotation_id", "id"]

    def __str__(self) -> str:
        return f"critique of response {self.response_id}"


class RatingPart(models.Model):
    """One response's score on one of the study's aspects, 1 to 5."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="ratings")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    aspect = models.CharField(max_length=64)
    value = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])

    class Meta:
        ordering = ["annotation_id", "response_id", "aspect"]
        constraints = [
            models.CheckConstraint(condition=models.Q(value__gte=1, value__lte=5), name="rating_value_1_to_5"),
            models.UniqueConstraint(fields=["annotation", "response", "aspect"], name="rating_one_per_aspect"),
        ]

    def __str__(self) -> str:
        return f"{self.aspect}={self.value} for response {self.response_id}"


# The annotation's columns in a RETURNING list, for the submit's written-out insert (see annotate/rows.py).
ANNOTATION_RETURNED = Columns(Annotation, None)
