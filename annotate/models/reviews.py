from django.conf import settings
from django.db import models

from annotate.models.feedback import Annotation


class Verdict(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Review(models.Model):
    """A reviewer's verdict on one answer, with a note its annotator sees.

    A rejected answer is never deleted: its `Annotation.rejected_by` points here, which takes it out
    of the current labels (as a correction would) while raw exports keep it, marked.
    """

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_given")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.verdict} annotation {self.annotation_id}"
