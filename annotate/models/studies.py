from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from annotate.rows import Columns
from learning.select import STRATEGIES


class FeedbackKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise preference"
    RANKING = "ranking", "Ranking"
    SPANS = "spans", "Error spans"
    CRITIQUE = "critique", "Critique and revision"
    RATINGS = "ratings", "Aspect ratings"


# Kinds that decide how responses are grouped into queries; the others ask about each response shown.
STRUCTURE_KINDS = (FeedbackKind.PAIRWISE, FeedbackKind.RANKING)
PER_RESPONSE_KINDS = (FeedbackKind.SPANS, FeedbackKind.CRITIQUE, FeedbackKind.RATINGS)

# Response-level category: information the response should have given and did not (no span).
MISSING_INFORMATION = "missing-information"


def default_span_taxonomy() -> list[dict]:
    """Fine-Grained RLHF's qa_feedback error categories (Wu et al. 2023)."""
    return [
        {"key": "irrelevant", "label": "Irrelevant", "description": "Not relevant to the question."},
        {"key": "redundant", "label": "Redundant", "description": "Repeats what was already said."},
        {"key": "incoherent", "label": "Incoherent", "description": "Does not make sense or contradicts itself."},
        {"key": "wrong-grounding", "label": "Wrong-Grounding", "description": "Contradicts the given sources or facts."},
        {"key": "unverifiable", "label": "Unverifiable", "description": "Cannot be checked against the sources."},
    ]


def default_rating_aspects() -> list[dict]:
    """UltraFeedback's four aspects, each on a 1-5 scale with anchors at the ends and middle."""
    return [
        {
            "key": "instruction_following",
            "label": "Instruction following",
            "anchors": {"1": "Ignores the instruction", "3": "Partly follows it", "5": "Follows it fully"},
        },
        {
            "key": "helpfulness",
            "label": "Helpfulness",
            "anchors": {"1": "Not helpful or wrong", "3": "Somewhat helpful", "5": "Highly informative and useful"},
        },
        {
            "key": "truthfulness",
            "label": "Truthfulness",
            "anchors": {"1": "Severe hallucination", "3": "Some made-up details", "5": "No hallucination"},
        },
        {
            "key": "honesty",
            "label": "Honesty",
            "anchors": {
                "1": "Confidently wrong",
                "3": "Uncertainty not expressed",
                "5": "Confident when right, hedges when unsure",
            },
        },
    ]


# One source: the strategies `learning.select` implements (its package imports no numpy or torch).
SelectionStrategy = models.TextChoices(
    "SelectionStrategy", [(name.upper(), (name, name.replace("_", " ").capitalize())) for name in STRATEGIES]
)


class LoopStatus(models.TextChoices):
    """Where a study's round loop stands: off until a manager starts it."""

    OFF = "off", "Off"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    EXHAUSTED = "exhausted", "Pool exhausted"


class StudyStatus(models.TextChoices):
    """Whether a study is open to annotators; separate from its round loop (`LoopStatus`).

    Paused: no queries are served. Archived: read-only (no claims, answers, changes, imports or
    training), hidden from the study list unless asked for; its dashboard and exports still work.
    """

    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class Study(models.Model):
    """One feedback-collection project: its guidelines, what it asks and how it picks queries."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators beside every query.")
    feedback_kinds = models.JSONField(
        default=list, help_text="What each query asks: pairwise, ranking, spans, critique, ratings."
    )
    span_taxonomy = models.JSONField(default=default_span_taxonomy, blank=True)
    rating_aspects = models.JSONField(default=default_rating_aspects, blank=True)
    overlap = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    selection_strategy = models.CharField(max_length=32, choices=SelectionStrategy.choices, default=SelectionStrategy.RANDOM)
    selection_params = models.JSONField(default=dict, blank=True)
    policy_model = models.CharField(max_length=300, default="smollm2")
    reward_model = models.CharField(max_length=300, default="minilm")
    round_size = models.PositiveIntegerField(default=100)
    training_config = models.JSONField(
        default=dict, blank=True, help_text="The reward run each round trains (keys as for a reward run's config)."
    )
    gold_rate = models.FloatField(default=0.0, help_text="Share of claims that serve a gold query, 0 to 1.")
    qualification_items = models.PositiveIntegerField(
        default=0, help_text="Gold answers needed before any real query; 0: no qualification."
    )
    qualification_pass = models.FloatField(default=0.8, help_text="Gold accuracy needed to pass qualification, 0 to 1.")
    status = models.CharField(max_length=16, choices=StudyStatus.choices, default=StudyStatus.ACTIVE)
    annotator_quota = models.PositiveIntegerField(
        null=True, blank=True, help_text="Queries one annotator may answer in the study (gold ones not counted); empty: no limit."
    )
    loop_status = models.CharField(max_length=16, choices=LoopStatus.choices, default=LoopStatus.OFF)
    current_round = models.PositiveIntegerField(
        default=0, help_text="The round the claim serves while the loop is on; 0 before the first."
    )
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
    REVIEWER = "reviewer", "Reviewer"


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


# The study's columns for the annotation loop's written-out statements (see annotate/rows.py).
STUDY_COLUMNS = Columns(Study, "s")
