"""Celery tasks: IDs in, one service call, idempotent."""

from celery import shared_task


@shared_task(name="annotate.tasks.train_model", acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> None:
    """Run a training job. A delivery that finds another live worker on it ends: the sweep below watches that worker."""
    from annotate.services.training import training_run_execute

    training_run_execute(run_id=run_id)


@shared_task(name="annotate.tasks.requeue_lost_runs")
def requeue_lost_runs() -> None:
    """Celery beat's sweep (CELERY_BEAT_SCHEDULE): queue again the training jobs whose worker was lost."""
    from annotate.services.training import training_runs_requeue_lost

    training_runs_requeue_lost()
