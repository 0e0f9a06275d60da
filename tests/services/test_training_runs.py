"""Training runs as the service records them: claimed once, failures written down, never silent."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, TrainingRun
from annotate.services.training import (
    Claim,
    claim_run,
    run_dir,
    split_progress,
    training_run_cancel,
    training_run_execute,
    training_run_start,
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
    assert run.status == "failed" and "lost" in run.error
    assert training_run_execute(run_id=run.pk) is Claim.DONE


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
