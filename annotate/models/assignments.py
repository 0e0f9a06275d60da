from django.conf import settings
from django.db import models

from annotate.models.items import Query
from annotate.rows import Columns


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """A query handed to one annotator, with the order its responses were shown in.

    `display_order` lists the query's positions left to right (e.g. [1, 0] shows the second
    response on the left), so position bias can be measured and answers mapped back.
    """

    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE)
    display_order = models.JSONField()
    started_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["query", "annotator"],
                condition=models.Q(status="active"),
                name="assignment_one_active_per_annotator",
            )
        ]
        indexes = [
            models.Index(fields=["annotator", "status"], name="assignment_annotator_idx"),
            models.Index(fields=["query", "status"], name="assignment_query_status_idx"),
            # The claim's "not handed to this annotator yet" probe, one per candidate query.
            models.Index(fields=["query", "annotator"], name="assignment_query_annotator_idx"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} of query {self.query_id} to {self.annotator_id}"


# The columns for the annotation loop's written-out statements: in a SELECT, and in a RETURNING list.
ASSIGNMENT_COLUMNS = Columns(Assignment, "a")
ASSIGNMENT_RETURNED = Columns(Assignment, None)
