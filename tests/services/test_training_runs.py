"""Training runs as the service records them: claimed once, failures written down, never silent."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Study, TrainingRun
from annotate.services.studies import study_delete
from annotate.services.training import (
    Claim,
    claim_run,
    run_dir,
    split_progress,
    training_run_cancel,
    training_run_execute,
    training_run_start,
    training_runs_requeue_lost,
)
from tests.factories import UserFactory, make_items, make_run, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def queued_run(study, **config) -> TrainingRun:
    return make_run(study, "reward", **config)


def test_a_duplicate_delivery_of_a_run_with_a_live_worker_does_nothing_and_says_busy():
    study = make_study()
    run = queued_run(study)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", worker="first:1", attempts=1, heartbeat_at=timezone.now())
    assert training_run_execute(run_id=run.pk) is Claim.BUSY
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempts) == ("running", "first:1", 1)
    assert not ModelVersion.objects.exists()


def test_a_run_whose_worker_stopped_beating_is_claimed_again(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    study = make_study()
    run = queued_run(study)
    stale = timezone.now() - timedelta(seconds=settings.PREFLAB_RUN_STALE_SECONDS + 1)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", worker="lost:1", attempts=1, heartbeat_at=stale)
    leftover = run_dir(run) / ".model.tmp-abc"
    leftover.mkdir(parents=True)
    assert claim_run(run.pk) is Claim.CLAIMED
    run.refresh_from_db()
    assert run.attempts == 2 and run.worker != "lost:1" and run.heartbeat_at > stale
    assert not leftover.exists()
    assert claim_run(run.pk) is Claim.BUSY


def test_a_run_that_lost_its_worker_too_often_fails_saying_so(settings):
    study = make_study()
    run = queued_run(study)
    stale = timezone.now() - timedelta(seconds=settings.PREFLAB_RUN_STALE_SECONDS + 1)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempts=settings.PREFLAB_RUN_MAX_ATTEMPTS, heartbeat_at=stale)
    assert training_run_execute(run_id=run.pk) is Claim.GAVE_UP
    run.refresh_from_db()
    assert run.status == "failed" and "lost" in run.error and "PREFLAB_RUN_MAX_ATTEMPTS" in run.error
    assert training_run_execute(run_id=run.pk) is Claim.DONE


def set_state(run: TrainingRun, status: str, *, attempts: int, beat_seconds_ago: float) -> None:
    beat = timezone.now() - timedelta(seconds=beat_seconds_ago)
    TrainingRun.objects.filter(pk=run.pk).update(status=status, worker="w:1", attempts=attempts, heartbeat_at=beat, step=7)


def test_the_sweep_queues_again_only_the_running_runs_whose_worker_stopped_beating(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.PREFLAB_RUN_STALE_SECONDS = 60
    settings.PREFLAB_RUN_MAX_ATTEMPTS = 3
    study = make_study()
    lost, alive, waiting, done, exhausted = (queued_run(study) for _ in range(5))
    set_state(lost, "running", attempts=2, beat_seconds_ago=61)
    set_state(alive, "running", attempts=1, beat_seconds_ago=30)
    TrainingRun.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(hours=3))
    set_state(done, "succeeded", attempts=1, beat_seconds_ago=3600)
    set_state(exhausted, "running", attempts=3, beat_seconds_ago=61)
    sent = []
    monkeypatch.setattr("annotate.tasks.train_model.apply_async", lambda args, queue: sent.append((*args, queue)))

    with django_capture_on_commit_callbacks(execute=True):
        assert training_runs_requeue_lost() == [lost.pk]
    assert sent == [(lost.pk, "gpu")]  # to its kind's queue, once the sweep's transaction committed
    lost.refresh_from_db()
    assert (lost.status, lost.attempts, lost.step) == ("queued", 2, 0)
    assert "lost" in lost.message
    for untouched, status in ((alive, "running"), (waiting, "queued"), (done, "succeeded")):
        untouched.refresh_from_db()
        assert untouched.status == status and untouched.attempts == (0 if status == "queued" else 1)
    exhausted.refresh_from_db()
    assert exhausted.status == "failed" and exhausted.finished_at is not None
    assert "3 attempt(s)" in exhausted.error and "PREFLAB_RUN_MAX_ATTEMPTS" in exhausted.error

    with django_capture_on_commit_callbacks(execute=True):
        assert training_runs_requeue_lost() == []  # the next sweep does not queue it twice
    assert sent == [(lost.pk, "gpu")]


def test_a_run_queued_again_is_claimed_as_its_next_attempt_in_an_emptied_folder(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    run = queued_run(make_study())
    set_state(run, "running", attempts=1, beat_seconds_ago=settings.PREFLAB_RUN_STALE_SECONDS + 1)
    leftover = run_dir(run) / "model" / "half.safetensors"
    leftover.parent.mkdir(parents=True)
    leftover.touch()
    assert training_runs_requeue_lost() == [run.pk]
    assert claim_run(run.pk) is Claim.CLAIMED
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 2)
    assert not leftover.exists()


def test_a_worker_presumed_lost_writes_nothing_more_once_its_run_was_taken_over(monkeypatch, settings, tmp_path):
    """A worker that was only slow to beat finishes after the next attempt began: that attempt's run is left alone."""
    from learning.reward.common import TrainResult

    settings.ARTIFACTS_DIR = tmp_path
    run = queued_run(make_study())
    seen = {}

    def slow_training(kind, config, data, *, output_dir, progress, should_stop):
        TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
        assert training_runs_requeue_lost() == [run.pk]
        assert claim_run(run.pk) is Claim.CLAIMED  # the next attempt, elsewhere
        (run_dir(run) / "next-attempt").mkdir(parents=True)
        seen["stop"] = should_stop()
        progress({"step": 9, "total_steps": 10, "loss": 0.1})
        return TrainResult(metrics={}, files=[], data_hash="x")

    monkeypatch.setattr("learning.launch.run_job", slow_training)
    assert training_run_execute(run_id=run.pk) is Claim.CLAIMED
    run.refresh_from_db()
    assert seen["stop"] is True
    assert (run.status, run.attempts, run.step, run.finished_at) == ("running", 2, 0, None)
    assert not ModelVersion.objects.exists()
    assert (run_dir(run) / "next-attempt").is_dir()


def test_too_few_labels_fail_the_run_saying_how_many_it_has_and_needs():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=3)
    label_preferring_first_response(study, annotator)
    run = queued_run(study)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "3" in run.error and "8" in run.error
    assert run.finished_at is not None
    assert run.log == ""  # the study's state, said in one line: no traceback to read through
    assert not ModelVersion.objects.exists()


def test_an_unexpected_failure_keeps_its_traceback_in_the_run_log(monkeypatch):
    study = make_study()
    run = queued_run(study)

    def broken(run):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr("annotate.services.training.train", broken)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.error == "RuntimeError: the disk is full"
    assert run.log.startswith("Traceback") and "in broken" in run.log


def test_an_unknown_base_model_is_refused_before_any_run_is_recorded():
    study = make_study()
    with pytest.raises(InvalidInput, match="no-such-org/no-such-model") as refused:
        training_run_start(
            study=study, requested_by=study.created_by, kind="reward", config={"base_model": "no-such-org/no-such-model"}
        )
    assert refused.value.field == "config.base_model"
    assert not TrainingRun.objects.exists()


def test_a_base_model_gone_by_the_time_the_worker_starts_fails_the_run_naming_it(tmp_path):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=10)
    label_preferring_first_response(study, annotator)
    run = queued_run(study)
    TrainingRun.objects.filter(pk=run.pk).update(config={"base_model": str(tmp_path / "deleted-model")})
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "deleted-model" in run.error and run.log == ""


def test_a_cancelled_run_is_not_claimed_and_cannot_be_cancelled_twice():
    study = make_study()
    run = training_run_cancel(run=queued_run(study))
    assert run.status == "cancelled"
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "cancelled"
    with pytest.raises(Conflict, match="Run .* is cancelled; only a queued or running run"):
        training_run_cancel(run=run)


@pytest.mark.parametrize(("ending", "status"), [("cancelled", "cancelled"), ("failed", "failed")], ids=["cancelled", "failed"])
def test_a_run_that_ends_without_a_model_leaves_no_files_behind(monkeypatch, settings, tmp_path, ending, status):
    from learning.errors import TrainingStopped

    settings.ARTIFACTS_DIR = str(tmp_path)
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=10)
    label_preferring_first_response(study, annotator)
    run = queued_run(study)
    written = []

    def half_a_training(kind, config, data, *, output_dir, progress, should_stop):
        output_dir.mkdir(parents=True)
        (output_dir / "model.safetensors").write_bytes(b"\0" * 1024)  # a checkpoint, as a real run writes
        written.append(output_dir)
        if ending == "cancelled":
            training_run_cancel(run=TrainingRun.objects.get(pk=run.pk))
            raise TrainingStopped("cancelled between steps")
        raise RuntimeError("the GPU fell over")

    monkeypatch.setattr("learning.launch.run_job", half_a_training)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == status
    assert written and not run_dir(run).exists()
    assert not ModelVersion.objects.exists()


def test_progress_is_read_even_behind_another_process_s_unfinished_line():
    """The training processes share one pipe: a rank's partial warning may stand in front of a progress line."""
    update = {"step": 5, "total_steps": 5, "loss": 0.5}
    line = "[W1129 rank1 warning] Grad strides do not match PROGRESS " + json.dumps(update) + "\n"
    assert split_progress(line) == (update, "[W1129 rank1 warning] Grad strides do not match")
    assert split_progress("PROGRESS " + json.dumps(update) + "\n") == (update, "")
    assert split_progress("ValueError: PROGRESS is not JSON here\n") == (None, "ValueError: PROGRESS is not JSON here")
    assert split_progress("Loading weights: 100%\n") == (None, "Loading weights: 100%")


def test_a_run_whose_study_is_deleted_while_it_trains_stops_and_leaves_no_files_behind(
    monkeypatch, settings, tmp_path, caplog, django_capture_on_commit_callbacks
):
    """The delete removes the run's folder once it commits; the run's last step still writes its model there."""
    from learning.reward.common import TrainResult

    settings.ARTIFACTS_DIR = str(tmp_path)
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=10)
    label_preferring_first_response(study, annotator)
    run = queued_run(study)
    seen = {}

    def last_step_after_the_delete(kind, config, data, *, output_dir, progress, should_stop):
        with django_capture_on_commit_callbacks(execute=True):
            study_delete(study=Study.objects.get(pk=study.pk))
        seen["stop"] = should_stop()
        output_dir.mkdir(parents=True)
        (output_dir / "model.safetensors").write_bytes(b"\0" * 1024)
        return TrainResult(metrics={}, files=[], data_hash="x")

    monkeypatch.setattr("learning.launch.run_job", last_step_after_the_delete)
    assert training_run_execute(run_id=run.pk) is Claim.CLAIMED
    assert seen["stop"] is True
    assert not TrainingRun.objects.filter(pk=run.pk).exists() and not ModelVersion.objects.exists()
    assert not run_dir(run).exists()
    assert "deleted or queued again" in caplog.text and "failed" not in caplog.text
