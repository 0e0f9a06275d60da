"""The Celery app: a `default` queue for light work and a `gpu` queue for what loads a model (learning/jobs.py)."""

import os

from celery import Celery
from celery.signals import worker_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

app = Celery("preflab")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue bound under its own name, so a worker's banner (and any broker's routing) says so.
app.conf.task_queues = (Queue("default", routing_key="default"), Queue("gpu", routing_key="gpu"))
app.autodiscover_tasks(["annotate"])


@worker_init.connect
def quiet_model_loading(**kwargs) -> None:
    """No model-loading progress bars in the worker's log, where each redraw lands as a warning line.

    Set before any job imports transformers, and inherited by training processes; a run's page
    shows its progress.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
