"""Tasks reach the queue they are routed to, and only that one, on the configured broker (Redis in CI)."""

import pytest

from annotate.celery import app
from annotate.tasks import requeue_lost_runs, select_round, train_model


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


def test_a_training_job_goes_to_the_gpu_queue_alone(channel):
    """docker-compose's `default` worker has no GPU: it must never be handed a training job."""
    train_model.apply_async(args=(0,))
    assert waiting(channel) == {"default": 0, "gpu": 1}


def test_the_lost_run_sweep_goes_to_the_default_queue(channel):
    """On the gpu queue it would wait behind the very training jobs whose workers it watches."""
    requeue_lost_runs.apply_async()
    assert waiting(channel) == {"default": 1, "gpu": 0}


def test_a_round_selection_goes_to_the_default_queue(channel):
    """Choosing a round's queries is light work next to training; it must not wait behind it."""
    select_round.apply_async(args=(0,))
    assert waiting(channel) == {"default": 1, "gpu": 0}


def test_every_queue_is_bound_under_its_own_name():
    assert {queue.name: queue.routing_key for queue in app.amqp.queues.values()} == {"default": "default", "gpu": "gpu"}
