"""Celery tasks: IDs in, one service call, idempotent."""

from celery import shared_task
from django.conf import settings


@shared_task(bind=True, name="annotate.tasks.train_model", acks_late=True, reject_on_worker_lost=True, max_retries=1000)
def train_model(self, run_id: int) -> None:
    """Run a training job. If another worker holds it, look again once its heartbeat could have gone stale."""
    from annotate.services.training import Claim, training_run_execute

    if training_run_execute(run_id=run_id) is Claim.BUSY:
        raise self.retry(countdown=settings.PREFLAB_RUN_STALE_SECONDS + 1)
