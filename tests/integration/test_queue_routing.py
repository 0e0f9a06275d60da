"""Tasks reach the queue they are routed to, and only that one, on the configured broker (Redis in CI)."""

import pytest

from annotate.celery import app
from annotate.models import TrainingRun
from annotate.services.training import run_enqueue
from annotate.tasks import requeue_lost_runs
from learning.jobs import JOB_KINDS


@pytest.fixture
def channel():
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        queues = [queue(channel) for queue in app.conf.task_queues]
        for queue in queues:
            queue.declare()
            queue.purge()
        yield channel
        for queue in queues:
            queue.purge()


def waiting(channel) -> dict[str, int]:
    return {queue.name: queue(channel).queue_declare().message_count for queue in app.conf.task_queues}


def sent(kind: str, capture) -> None:
    """Queue a job of `kind` as the services do, once the (test's) transaction commits."""
    with capture(execute=True):
        run_enqueue(TrainingRun(pk=0, kind=kind))


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["reward", "span_reward", "rating_reward", "features"])
def test_a_job_that_loads_a_model_goes_to_the_gpu_queue_alone(channel, kind, django_capture_on_commit_callbacks):
    """docker-compose's `default` worker has no GPU: it must never be handed a training job."""
    sent(kind, django_capture_on_commit_callbacks)
    assert waiting(channel) == {"default": 0, "gpu": 1}


@pytest.mark.django_db
def test_a_selection_job_goes_to_the_default_queue(channel, django_capture_on_commit_callbacks):
    """Choosing a round's queries is light work next to training; it must not wait behind it."""
    sent("selection", django_capture_on_commit_callbacks)
    assert waiting(channel) == {"default": 1, "gpu": 0}


def test_every_kind_names_a_queue_the_app_declares():
    assert {kind.queue for kind in JOB_KINDS.values()} <= {queue.name for queue in app.conf.task_queues}


def test_the_lost_run_sweep_goes_to_the_default_queue(channel):
    """On the gpu queue it would wait behind the very training jobs whose workers it watches."""
    requeue_lost_runs.apply_async()
    assert waiting(channel) == {"default": 1, "gpu": 0}


def test_every_queue_is_bound_under_its_own_name():
    assert {queue.name: queue.routing_key for queue in app.amqp.queues.values()} == {"default": "default", "gpu": "gpu"}
