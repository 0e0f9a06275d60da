"""Celery tasks: IDs in, one service call, idempotent."""

from celery import shared_task


@shared_task(name="annotate.tasks.train_model", acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> None:
    """Run a training job. A delivery that finds another live worker on it ends: the sweep below watches that worker."""
    from annotate.services.rounds import rounds_after_run
    from annotate.services.training import training_run_execute

    training_run_execute(run_id=run_id)
    rounds_after_run(run_id=run_id)  # a round's run: record it and select the next round; else nothing


@shared_task(name="annotate.tasks.requeue_lost_runs")
def requeue_lost_runs() -> None:
    """Celery beat's sweep (CELERY_BEAT_SCHEDULE): queue again the training jobs whose worker was lost."""
    from annotate.services.training import training_runs_requeue_lost

    training_runs_requeue_lost()


@shared_task(name="annotate.tasks.select_round", acks_late=True, reject_on_worker_lost=True)
def select_round(round_id: int) -> None:
    """Choose a round's queries; a duplicate delivery finds the round chosen and writes nothing."""
    from annotate.services.rounds import round_select

    round_select(round_id=round_id)
