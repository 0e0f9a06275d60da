"""Starting, running and recording training jobs."""

from __future__ import annotations

import collections
import dataclasses
import enum
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Round, Study, TrainingRun
from annotate.models.training import RunKind, RunStatus
from annotate.selectors.training_data import eval_groups, preference_pairs, ranking_examples, rating_examples, span_examples
from annotate.selectors.training_readiness import run_readiness
from annotate.services.splits import study_split_assign
from annotate.services.study_status import refuse_if_archived
from annotate.text import refuse_unstorable
from learning.jobs import JOB_KINDS, MODEL_KINDS
from learning.launch import PROGRESS_PREFIX

logger = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0
EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|NotEnoughLabels|TrainingStopped): ")


def run_dir(run: TrainingRun) -> Path:
    return Path(settings.ARTIFACTS_DIR) / "runs" / str(run.pk)


def check_config(kind: str, config: dict) -> dict:
    """The config as given, once the kind's config class (learning/jobs.py) accepts it; loads no torch."""
    from learning.config import ConfigError
    from learning.jobs import job_config

    if not isinstance(config, dict):
        raise InvalidInput("config must be an object.", field="config")
    refuse_unstorable(config, "config")
    try:
        job_config(kind, config)
    except ConfigError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    return dict(config)


def check_base_model(name: str, field: str = "config.base_model") -> None:
    """Refuse an unknown model id or path now, not minutes later on a worker (resolving loads no weights)."""
    from learning.models import ModelNotFoundError, resolve_model

    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field} must be a Hugging Face id or a local path.", field=field)
    try:
        resolve_model(name)
    except ModelNotFoundError as exc:
        raise InvalidInput(str(exc), field=field) from None


def run_enqueue(run: TrainingRun) -> None:
    """Send the run's job to its kind's queue (learning/jobs.py) once the transaction commits.

    A duplicate is harmless: the worker's claim (claim_run) lets one delivery run it.
    """
    from annotate.tasks import train_model

    train_model.apply_async_on_commit((run.pk,), queue=JOB_KINDS[run.kind].queue)


@transaction.atomic
def training_run_start(
    *,
    study: Study,
    requested_by: AbstractBaseUser | None,
    kind: str,
    config: dict | None = None,
    enqueue: bool = True,
    for_round: Round | None = None,
) -> TrainingRun:
    """Record a run and queue it for a worker once the transaction commits (unless the caller runs it itself).

    for_round: the round the run is a step of (annotate/services/rounds.py), or None.
    Refused when the run could not train now (see annotate/selectors/training_readiness.py).
    """
    refuse_if_archived(study, "training")
    if kind not in RunKind.values:
        raise InvalidInput(f"Unknown run kind {kind!r}; use one of {', '.join(RunKind.values)}.", field="kind")
    if JOB_KINDS[kind].round_only and for_round is None:
        raise InvalidInput(f"A {kind} run is a step of a round: start the study's rounds instead.", field="kind")
    config = check_config(kind, config or {})
    if "base_model" in (field.name for field in dataclasses.fields(JOB_KINDS[kind].config)):
        config.setdefault("base_model", study.reward_model)
        check_base_model(config["base_model"])
    if kind in MODEL_KINDS:
        readiness = run_readiness(study, kind, config)
        if not readiness.can_run:  # it would fail on the worker at once; the worker still checks (labels change)
            raise InvalidInput(f"Nothing was started: a {readiness.label.lower()} {readiness.reason}.")
    run = TrainingRun.objects.create(
        study=study, kind=kind, config=config, created_by=requested_by, round=for_round, message="Waiting for a worker"
    )
    if enqueue:
        run_enqueue(run)
    return run


class Claim(enum.Enum):
    CLAIMED = "claimed"  # this delivery runs the job
    BUSY = "busy"  # another worker is running it and is alive; if it is lost, the sweep queues the run again
    DONE = "done"  # finished, cancelled or unknown: nothing to do
    GAVE_UP = "gave_up"  # its workers were lost too often; the run was failed


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lost_runs(now: datetime) -> QuerySet[TrainingRun]:
    """Running jobs whose worker has sent no heartbeat for PREFLAB_RUN_STALE_SECONDS: presumed lost."""
    stale = now - timedelta(seconds=settings.PREFLAB_RUN_STALE_SECONDS)
    return TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale)


def fail_exhausted(lost: QuerySet[TrainingRun], now: datetime) -> int:
    """Fail the lost runs that used up PREFLAB_RUN_MAX_ATTEMPTS, saying so; returns how many."""
    attempts = settings.PREFLAB_RUN_MAX_ATTEMPTS
    return lost.filter(attempts__gte=attempts).update(
        status=RunStatus.FAILED,
        finished_at=now,
        message="Failed",
        eta_seconds=None,
        error=(
            f"The worker running this job was lost (no heartbeat for {settings.PREFLAB_RUN_STALE_SECONDS} s) "
            f"on each of its {attempts} attempt(s); giving up. PREFLAB_RUN_MAX_ATTEMPTS allows more."
        ),
    )


def claim_run(run_id: int) -> Claim:
    """Claim a queued run, or take over one whose worker stopped sending heartbeats.

    Each branch is one conditional UPDATE, so of two deliveries of the same task only one wins.
    A claim counts an attempt, and the attempt number is the claimant's token: a worker that was
    presumed lost and is overtaken writes nothing more to the run.
    """
    now = timezone.now()
    runs = TrainingRun.objects.filter(pk=run_id)
    mine = {"worker": worker_name(), "heartbeat_at": now, "attempts": F("attempts") + 1}
    lost = lost_runs(now).filter(pk=run_id)
    claimed = runs.filter(status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, started_at=now, message="Starting", **mine)
    if not claimed:
        claimed = lost.filter(attempts__lt=settings.PREFLAB_RUN_MAX_ATTEMPTS).update(
            message="Retrying: the last worker was lost", **mine
        )
    if claimed:
        shutil.rmtree(run_dir(TrainingRun(pk=run_id)), ignore_errors=True)  # whatever a lost worker left
        return Claim.CLAIMED
    if fail_exhausted(lost, now):
        return Claim.GAVE_UP
    return Claim.BUSY if runs.filter(status=RunStatus.RUNNING).exists() else Claim.DONE


@transaction.atomic
def training_runs_requeue_lost() -> list[int]:
    """Queue again each running job whose worker was lost, and fail those lost too often; returns the ids queued.

    Celery beat calls this twice per PREFLAB_RUN_STALE_SECONDS, so a job whose worker died waits
    about that long whatever the broker does: Redis would hand its unacknowledged task to another
    worker only after the visibility timeout, and the filesystem transport never. The run goes
    back to QUEUED in the UPDATE that finds it, so the next sweep (or a second beat) does not
    queue it twice; a worker then claims it as it claims any queued run.
    """
    now = timezone.now()
    lost = lost_runs(now)
    fail_exhausted(lost, now)
    requeued = []
    for run_id, kind in lost.values_list("pk", "kind"):
        back = lost.filter(pk=run_id).update(
            status=RunStatus.QUEUED,
            step=0,
            progress=0.0,
            loss=None,
            eta_seconds=None,
            message="Waiting for a worker: the last one was lost",
        )
        if back:
            run_enqueue(TrainingRun(pk=run_id, kind=kind))
            requeued.append(run_id)
    if requeued:
        logger.warning("queued again training run(s) %s: their worker sent no heartbeat", requeued)
    return requeued


def held(run_id: int, attempt: int) -> QuerySet[TrainingRun]:
    """The run, while the claim numbered `attempt` still holds it: running, and not taken over since."""
    return TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt)


class Heartbeat:
    """Refreshes the run's heartbeat from a thread while training runs, even through long model loads."""

    def __init__(self, run_id: int, attempt: int):
        self.run_id = run_id
        self.attempt = attempt
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.beat, name=f"heartbeat-{run_id}", daemon=True)

    def beat(self) -> None:
        interval = max(1.0, settings.PREFLAB_RUN_STALE_SECONDS / 5)
        try:
            while not self.stopped.wait(interval):
                held(self.run_id, self.attempt).update(heartbeat_at=timezone.now())
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


class ProgressRecorder:
    """Writes a run's progress to its row at most once a second, and tells training when to stop."""

    def __init__(self, run_id: int, attempt: int, doing: str = "Training"):
        self.run_id = run_id
        self.attempt = attempt
        self.doing = doing
        self.last_write = 0.0

    def __call__(self, update: dict) -> None:
        now = time.monotonic()
        total = int(update.get("total_steps") or 0)
        step = int(update.get("step") or 0)
        if now - self.last_write < PROGRESS_EVERY_SECONDS and step < total:
            return
        self.last_write = now
        held(self.run_id, self.attempt).update(
            step=step,
            total_steps=total,
            progress=(step / total) if total else 0.0,
            loss=update.get("loss"),
            eta_seconds=update.get("eta_seconds"),
            message=f"{self.doing}: step {step} of {total}",
        )

    def should_stop(self) -> bool:
        """Cancelled, or presumed lost and queued again: this worker no longer holds the run."""
        return not held(self.run_id, self.attempt).exists()


def fail_run(run: TrainingRun, error: str, log: str = "") -> None:
    held(run.pk, run.attempts).update(
        status=RunStatus.FAILED, error=error, log=log, finished_at=timezone.now(), message="Failed", eta_seconds=None
    )


def discard_files(run: TrainingRun) -> None:
    """Remove the run's folder after a failed or stopped attempt, unless the run was queued again since.

    A run queued again after this worker was presumed lost belongs to its next attempt (whose
    claim empties the folder anyway); a later claim may already be writing there. A run whose
    study was deleted meanwhile also removes the study's feature caches: the delete removed them
    when it committed, and this run may have written there since (it stops at its next check).
    """
    from annotate.services.features import features_dir

    next_attempt = Q(status=RunStatus.QUEUED) | Q(attempts__gt=run.attempts)
    if not TrainingRun.objects.filter(next_attempt, pk=run.pk).exists():
        shutil.rmtree(run_dir(run), ignore_errors=True)
    if not Study.objects.filter(pk=run.study_id).exists():
        shutil.rmtree(features_dir(Study(pk=run.study_id)), ignore_errors=True)


def training_run_execute(*, run_id: int) -> Claim:
    """Run the job (train and register a model version, or compute features); every failure is recorded on the run.

    Idempotent: a duplicate delivery finds the run claimed and returns BUSY (if that worker is lost,
    the beat sweep queues the run again) or DONE. Returns how the claim went.
    """
    claim = claim_run(run_id)
    if claim is not Claim.CLAIMED:
        logger.info("training run %s: %s", run_id, claim.value)
        return claim
    run = TrainingRun.objects.select_related("study").get(pk=run_id)  # run.attempts: this claim's number
    from learning.artifacts import ArtifactIntegrityError
    from learning.errors import NotEnoughLabels, TrainingStopped
    from learning.models import ModelNotFoundError

    try:
        with Heartbeat(run_id, run.attempts):
            version = train(run)
    except TrainingStopped:
        # Cancelled, deleted with its study, or queued again while this worker was presumed lost: not ours now.
        cancelled = TrainingRun.objects.filter(pk=run_id, status=RunStatus.CANCELLED, attempts=run.attempts)
        if not cancelled.update(finished_at=timezone.now(), message="Cancelled", eta_seconds=None):
            logger.warning("training run %s was deleted or queued again while attempt %s ran; stopped", run_id, run.attempts)
        discard_files(run)  # no version refers to a half-trained model
        return claim
    except Exception as exc:  # noqa: BLE001 - every failure must land on the run, with its message
        # Too few labels or a missing model is the study's state, not a fault: its message says it all.
        expected = isinstance(exc, NotEnoughLabels | ModelNotFoundError | ArtifactIntegrityError)
        if expected:
            logger.warning("training run %s failed: %s", run_id, exc)
        else:
            logger.exception("training run %s failed", run_id)
        fail_run(run, f"{type(exc).__name__}: {exc}", "" if expected else traceback.format_exc())
        discard_files(run)  # the error and log are on the run; the files are orphans
        return claim
    logger.info("training run %s finished: %s", run_id, version or "no model to register")
    return claim


def training_data(run: TrainingRun) -> dict:
    """The study's labels for this kind of run, as the plain data `learning.launch.run_job` takes.

    Every kind is evaluated on the study's fixed split (`services.splits`), never on one of its own.
    """
    study = run.study
    study_split_assign(study=study)
    held_out = {"eval_groups": eval_groups(study)}
    if run.kind == RunKind.REWARD:
        return {"pairs": preference_pairs(study), "rankings": ranking_examples(study), **held_out}
    if run.kind == RunKind.SPAN_REWARD:
        return {"examples": span_examples(study), "categories": [c["key"] for c in study.span_taxonomy], **held_out}
    return {"examples": rating_examples(study), "aspects": [a["key"] for a in study.rating_aspects], **held_out}


def training_processes() -> int:
    """How many processes train one job: PREFLAB_TRAIN_PROCESSES, or one per visible GPU for "auto"."""
    wanted = settings.PREFLAB_TRAIN_PROCESSES
    if wanted != "auto":
        return int(wanted)
    import torch

    return max(1, torch.cuda.device_count())


def job_data(run: TrainingRun) -> dict:
    """What the run's runner reads, as plain data: the study's labels, for features its responses,
    for a selection its round's pool with the features and margins its strategy reads."""
    if run.kind == RunKind.FEATURES:
        from annotate.services.features import features_job_data

        return features_job_data(run)
    if run.kind == RunKind.SELECTION:
        from annotate.services.rounds import selection_job_data

        return selection_job_data(run)
    return training_data(run)


def train(run: TrainingRun) -> ModelVersion | None:
    """Gather the run's data, run its kind in this process or (training) in one per GPU, record the result.

    A kind that trains a model registers a version; another (features) records its metrics.
    """
    from learning.launch import run_job

    kind = JOB_KINDS[run.kind]
    recorder = ProgressRecorder(run.pk, run.attempts, doing="Training" if kind.registers_model else kind.label)
    output = run_dir(run) / "model"
    data = job_data(run)
    processes = training_processes() if kind.registers_model else 1
    if processes > 1:
        result = train_in_processes(run, data, processes=processes, recorder=recorder, output=output)
    else:
        result = run_job(run.kind, run.config, data, output_dir=output, progress=recorder, should_stop=recorder.should_stop)
    if not kind.registers_model:
        return finish_run(run, metrics=result)
    return register_model_version(run=run, output=output, result=result, base_model=run.config["base_model"])


def finish_run(run: TrainingRun, *, metrics: dict) -> None:
    """Record a run that registers no model as succeeded, with its metrics; unless it was cancelled meanwhile."""
    from learning.errors import TrainingStopped

    finished = held(run.pk, run.attempts).update(
        status=RunStatus.SUCCEEDED,
        metrics=metrics,
        progress=1.0,
        finished_at=timezone.now(),
        message="Done",
        eta_seconds=None,
    )
    if not finished:
        raise TrainingStopped(f"run {run.pk} was cancelled or taken over before it finished")


def split_progress(line: str) -> tuple[dict | None, str]:
    """A line of the training processes' shared output: (its progress update or None, the other text).

    Every process writes to one pipe. The main process writes each progress line in one write,
    which a pipe keeps whole, but another process's unfinished line (a C++ warning written in
    pieces, a progress bar) may stand in front of it; that text is kept, and the update is not lost.
    """
    before, found, after = line.partition(PROGRESS_PREFIX)
    if found:
        try:
            return json.loads(after), before.rstrip()
        except ValueError:
            pass  # not ours: the prefix inside someone else's text
    return None, line.rstrip()


def train_in_processes(run: TrainingRun, data: dict, *, processes: int, recorder: ProgressRecorder, output: Path):
    """Train with `torchrun`, one process per GPU (accelerate's DDP), relaying progress and stop requests."""
    from learning.errors import TrainingStopped
    from learning.launch import STOPPED_EXIT_CODE, job_to_json
    from learning.reward.common import TrainResult

    folder = run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    job, result_file, stop_file = folder / "job.json", folder / "result.json", folder / "stop"
    job.write_text(job_to_json(run.kind, run.config, data), encoding="utf-8")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "learning.launch", "--job", str(job), "--output", str(output), "--result", str(result_file),
        "--stop-file", str(stop_file),
    ]  # fmt: skip
    tail: collections.deque[str] = collections.deque(maxlen=40)
    errors: list[str] = []  # the processes' own exception lines, which torchrun's report buries
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=settings.BASE_DIR
    ) as job_process:
        for line in job_process.stdout:
            update, other = split_progress(line)
            if update is not None:
                recorder(update)
                if recorder.should_stop():
                    stop_file.touch()
            if other:
                tail.append(other)
                if EXCEPTION_LINE.match(other) and other not in errors:
                    errors.append(other)
    if job_process.returncode == STOPPED_EXIT_CODE or (job_process.returncode and stop_file.exists()):
        raise TrainingStopped(f"run {run.pk} was cancelled")
    if job_process.returncode != 0:
        reason = "\n".join(errors) or "\n".join(tail)
        raise RuntimeError(f"{processes} training processes failed (exit {job_process.returncode}): {reason}")
    return TrainResult(**json.loads(result_file.read_text(encoding="utf-8")))


@transaction.atomic
def register_model_version(*, run: TrainingRun, output: Path, result, base_model: str) -> ModelVersion:
    """Record the finished run and its model version together, or neither.

    A run cancelled (or taken from this worker) while its last step ran is left as it is, with no
    version from this worker.
    """
    from learning.errors import TrainingStopped

    study = Study.objects.select_for_update().filter(pk=run.study_id).first()
    if study is None:
        raise TrainingStopped(f"run {run.pk}'s study was deleted before its model was registered")
    number = (ModelVersion.objects.filter(study=study, kind=run.kind).aggregate(n=Max("version"))["n"] or 0) + 1
    finished = held(run.pk, run.attempts).update(
        status=RunStatus.SUCCEEDED,
        metrics=result.metrics,
        progress=1.0,
        finished_at=timezone.now(),
        message=f"Registered {run.kind} model v{number}",
        eta_seconds=None,
    )
    if not finished:
        raise TrainingStopped(f"run {run.pk} was cancelled or taken over before its model was registered")
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
    run.refresh_from_db()
    if not updated:  # a state it is in, not a mistake in the request: 409, as for other conflicts
        raise Conflict(f"Run {run.pk} is {run.status}; only a queued or running run can be cancelled.")
    return run
