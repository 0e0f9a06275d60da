from django.conf import settings
from django.db import models

from annotate.models.studies import Study
from learning.jobs import JOB_KINDS

# One choice per job kind, from the one table of kinds (learning/jobs.py).
RunKind = models.TextChoices("RunKind", [(name.upper(), (name, kind.label)) for name, kind in JOB_KINDS.items()])


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class TrainingRun(models.Model):
    """One job of any kind (learning/jobs.py), from request to result; a worker claims it once."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that claimed it last.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Claims so far; a lost worker's run is claimed again.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Refreshed by the worker while it trains.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    round = models.ForeignKey(
        "annotate.Round",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The round this job is a step of (annotate/services/rounds.py); its newest is the step it is in.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}


class ModelVersion(models.Model):
    """A trained model in the registry: where its files are, what it was trained on, how it scored."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="model_versions")
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    version = models.PositiveIntegerField()
    base_model = models.CharField(max_length=300)
    artifact_path = models.CharField(max_length=500)
    checksum = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict)
    data_hash = models.CharField(max_length=64)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["study", "kind", "version"], name="model_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} of {self.study}"
