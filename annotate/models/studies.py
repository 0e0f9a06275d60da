from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class FeedbackKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise preference"


class SelectionStrategy(models.TextChoices):
    RANDOM = "random", "Random"


class Study(models.Model):
    """One feedback-collection project: its guidelines, what it asks and how it picks queries."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators beside every query.")
    feedback_kinds = models.JSONField(default=list)
    overlap = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    selection_strategy = models.CharField(max_length=32, choices=SelectionStrategy.choices, default=SelectionStrategy.RANDOM)
    selection_params = models.JSONField(default=dict, blank=True)
    policy_model = models.CharField(max_length=300, default="smollm2")
    reward_model = models.CharField(max_length=300, default="minilm")
    round_size = models.PositiveIntegerField(default=100)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "studies"
        constraints = [models.CheckConstraint(condition=models.Q(overlap__gte=1), name="study_overlap_positive")]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    MANAGER = "manager", "Manager"
    ANNOTATOR = "annotator", "Annotator"
    RESEARCHER = "researcher", "Researcher"


class Membership(models.Model):
    """A user's one role in one study; authorisation is per study."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "study"], name="membership_one_role_per_study")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.study}"
