"""Celery tasks: IDs in, one service call, idempotent."""

from celery import shared_task


@shared_task(name="annotate.tasks.train_reward_model", acks_late=True, reject_on_worker_lost=True)
def train_reward_model(run_id: int) -> None:
    from annotate.services.training import training_run_execute

    training_run_execute(run_id=run_id)
