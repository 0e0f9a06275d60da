from django.db import models

from annotate.models.studies import Study
from annotate.models.training import ModelVersion, TrainingRun


class RoundStatus(models.TextChoices):
    SELECTING = "selecting", "Selecting"  # its jobs (features, then selection) are choosing its queries
    COLLECTING = "collecting", "Collecting"  # annotators are labelling them
    TRAINING = "training", "Training"  # every query reached its overlap (or a manager ended it); a reward run trains
    DONE = "done", "Done"
    FAILED = "failed", "Failed"  # selection or training failed: the loop waits for a manager
    EXHAUSTED = "exhausted", "Pool exhausted"  # nothing left to select


# A round in one of these holds the loop: no other round may start until it moves on.
IN_PROGRESS = (RoundStatus.SELECTING, RoundStatus.COLLECTING, RoundStatus.TRAINING)


class Round(models.Model):
    """One batch of the study's loop: chosen by a strategy, labelled, then a model trained on everything so far."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    strategy = models.CharField(max_length=32, help_text="The study's strategy when the round started.")
    params = models.JSONField(default=dict, blank=True, help_text="Its selection_params then.")
    chosen_by = models.CharField(
        max_length=32, blank=True, help_text="How the queries were picked: the strategy, or random before a model exists."
    )
    size = models.PositiveIntegerField(help_text="Queries asked for; the round may hold fewer (see message).")
    status = models.CharField(max_length=16, choices=RoundStatus.choices, default=RoundStatus.SELECTING)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Used to select."
    )
    trained_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Trained after it."
    )
    selected = models.PositiveIntegerField(default=0, help_text="Queries the round holds.")
    labels = models.PositiveIntegerField(null=True, blank=True, help_text="Labels in the study when it closed.")
    heldout_accuracy = models.FloatField(null=True, blank=True)
    heldout_accuracy_low = models.FloatField(null=True, blank=True)
    heldout_accuracy_high = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    progress = models.FloatField(default=0.0, help_text="0..1 of the step it is in.")
    created_at = models.DateTimeField(auto_now_add=True)
    selected_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study_id", "number"]
        constraints = [models.UniqueConstraint(fields=["study", "number"], name="round_unique_number")]

    def __str__(self) -> str:
        return f"round {self.number} of {self.study_id} ({self.status})"

    def current_run(self) -> TrainingRun | None:
        """The job of the step the round is in (or was in last): its newest run."""
        return self.runs.order_by("-id").first()
