"""Starting, running and recording training jobs."""

from __future__ import annotations

import logging
import socket
import time
import traceback
from dataclasses import fields as dataclass_fields
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotate.errors import InvalidInput
from annotate.models import ModelVersion, Study, TrainingRun
from annotate.models.training import RunKind, RunStatus
from annotate.selectors.training_data import preference_pairs

logger = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0
REWARD_CONFIG_KEYS = (
    "base_model",
    "epochs",
    "batch_size",
    "learning_rate",
    "head_learning_rate",
    "max_length",
    "eval_fraction",
    "seed",
    "min_pairs",
)


def run_dir(run: TrainingRun) -> Path:
    return Path(settings.ARTIFACTS_DIR) / "runs" / str(run.pk)


def check_reward_config(config: dict) -> dict:
    if not isinstance(config, dict):
        raise InvalidInput("config must be an object.", field="config")
    unknown = set(config) - set(REWARD_CONFIG_KEYS)
    if unknown:
        raise InvalidInput(
            f"Unknown config key(s) {', '.join(sorted(unknown))}; known: {', '.join(REWARD_CONFIG_KEYS)}.", field="config"
        )
    return dict(config)


@transaction.atomic
def training_run_start(*, study: Study, requested_by: AbstractBaseUser, kind: str, config: dict | None = None) -> TrainingRun:
    """Record a run and queue it for a worker once the transaction commits."""
    from annotate.tasks import train_reward_model

    if kind != RunKind.REWARD:
        raise InvalidInput(f"Unknown run kind {kind!r}; use one of {', '.join(RunKind.values)}.", field="kind")
    config = check_reward_config(config or {})
    config.setdefault("base_model", study.reward_model)
    run = TrainingRun.objects.create(
        study=study, kind=kind, config=config, created_by=requested_by, message="Waiting for a worker"
    )
    train_reward_model.delay_on_commit(run.pk)
    return run


def claim_run(run_id: int) -> bool:
    """Move a queued run to running; only one delivery of a task ever wins this."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), worker=socket.gethostname(), message="Starting"
    )
    return claimed == 1


class ProgressRecorder:
    """Writes a run's progress to its row at most once a second, and tells training when to stop."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.last_write = 0.0

    def __call__(self, update: dict) -> None:
        now = time.monotonic()
        total = int(update.get("total_steps") or 0)
        step = int(update.get("step") or 0)
        if now - self.last_write < PROGRESS_EVERY_SECONDS and step < total:
            return
        self.last_write = now
        TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
            step=step,
            total_steps=total,
            progress=(step / total) if total else 0.0,
            loss=update.get("loss"),
            eta_seconds=update.get("eta_seconds"),
            message=f"Training: step {step} of {total}",
        )

    def should_stop(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.CANCELLED).exists()


def fail_run(run_id: int, error: str, log: str = "") -> None:
    TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, error=error, log=log, finished_at=timezone.now(), message="Failed", eta_seconds=None
    )


def training_run_execute(*, run_id: int) -> None:
    """Train what the run asks for and register the model version; every failure is recorded on the run.

    Idempotent: a duplicate or retried delivery finds the run already claimed and does nothing.
    """
    if not claim_run(run_id):
        logger.info("training run %s is not queued; nothing to do", run_id)
        return
    run = TrainingRun.objects.select_related("study").get(pk=run_id)
    from learning.errors import TrainingStopped

    try:
        version = train_reward(run)
    except TrainingStopped:
        TrainingRun.objects.filter(pk=run_id).update(finished_at=timezone.now(), message="Cancelled", eta_seconds=None)
        return
    except Exception as exc:  # noqa: BLE001 - every failure must land on the run, with its message
        logger.exception("training run %s failed", run_id)
        fail_run(run_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return
    logger.info("training run %s registered %s", run_id, version)


def train_reward(run: TrainingRun) -> ModelVersion:
    from learning.reward.train import RewardTrainConfig, train_reward_model

    known = {f.name for f in dataclass_fields(RewardTrainConfig)}
    config = RewardTrainConfig(**{k: v for k, v in run.config.items() if k in known})
    pairs = preference_pairs(run.study)
    recorder = ProgressRecorder(run.pk)
    output = run_dir(run) / "model"
    result = train_reward_model(pairs, config=config, output_dir=output, progress=recorder, should_stop=recorder.should_stop)
    return register_model_version(run=run, output=output, result=result, base_model=config.base_model)


@transaction.atomic
def register_model_version(*, run: TrainingRun, output: Path, result, base_model: str) -> ModelVersion:
    """Record the finished run and its model version together, or neither.

    A run cancelled while its last step ran is left cancelled, with no version.
    """
    from learning.errors import TrainingStopped

    study = Study.objects.select_for_update().get(pk=run.study_id)
    number = (ModelVersion.objects.filter(study=study, kind=run.kind).aggregate(n=Max("version"))["n"] or 0) + 1
    finished = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.SUCCEEDED,
        metrics=result.metrics,
        progress=1.0,
        finished_at=timezone.now(),
        message=f"Registered {run.kind} model v{number}",
        eta_seconds=None,
    )
    if not finished:
        raise TrainingStopped(f"run {run.pk} was cancelled before its model was registered")
    return ModelVersion.objects.create(
        study=study,
        run=run,
        kind=run.kind,
        version=number,
        base_model=base_model,
        artifact_path=str(output),
        checksum=result.checksum,
        metrics=result.metrics,
        data_hash=result.data_hash,
        parent=ModelVersion.objects.filter(study=study, kind=run.kind).order_by("-version").first(),
    )


@transaction.atomic
def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Ask a queued or running job to stop; the worker checks between steps."""
    updated = TrainingRun.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.CANCELLED, message="Cancelled", finished_at=timezone.now()
    )
    if not updated:
        raise InvalidInput(f"Run {run.pk} is {run.status}; only a queued or running run can be cancelled.")
    run.refresh_from_db()
    return run
