"""The Celery tasks, run in this process: each makes its one service call and nothing piles up."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import TrainingRun
from annotate.tasks import requeue_lost_runs, train_model
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def running_run(*, beat_seconds_ago: float) -> TrainingRun:
    study = make_study()
    run = TrainingRun.objects.create(study=study, kind="reward", config={}, created_by=study.created_by)
    beat = timezone.now() - timedelta(seconds=beat_seconds_ago)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", worker="other:1", attempts=1, heartbeat_at=beat)
    return run


def test_a_delivery_that_finds_a_live_worker_on_its_run_ends_without_queueing_a_retry():
    """Retries of busy deliveries piled up for as long as the run trained; the sweep watches that worker instead."""
    run = running_run(beat_seconds_ago=0)
    result = train_model.apply(args=(run.pk,))
    assert result.state == "SUCCESS"
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempts) == ("running", "other:1", 1)


def test_the_sweep_task_queues_again_a_run_whose_worker_was_lost(settings, monkeypatch, django_capture_on_commit_callbacks):
    run = running_run(beat_seconds_ago=settings.PREFLAB_RUN_STALE_SECONDS + 1)
    sent = []
    monkeypatch.setattr("annotate.tasks.train_model.apply_async", lambda args, queue: sent.append((*args, queue)))
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_lost_runs.apply().state == "SUCCESS"
    assert sent == [(run.pk, "gpu")]  # to its kind's queue
    run.refresh_from_db()
    assert run.status == "queued"
