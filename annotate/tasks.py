"""Celery tasks: IDs in, one service call, idempotent."""

from celery import shared_task


@shared_task(name="annotate.tasks.train_model", acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> None:
    """Run a job of any kind (learning/jobs.py: training, features, selection), sent to its kind's queue.

    A delivery that finds another live worker on it ends: the sweep below watches that worker.
    """
    from annotate.services.rounds import rounds_after_run
    from annotate.services.training import training_run_execute

    training_run_execute(run_id=run_id)
    rounds_after_run(run_id=run_id)  # a round's step: start its next step or move the loop on; else nothing


@shared_task(name="annotate.tasks.requeue_lost_runs")
def requeue_lost_runs() -> None:
    """Celery beat's sweep (CELERY_BEAT_SCHEDULE): queue again the jobs whose worker was lost."""
    from annotate.services.training import training_runs_requeue_lost

    training_runs_requeue_lost()
