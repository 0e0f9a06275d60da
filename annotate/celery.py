"""The Celery app: a `default` queue for light work and a `gpu` queue for training."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

app = Celery("preflab")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue bound under its own name, so a worker's banner (and any broker's routing) says so.
app.conf.task_queues = (Queue("default", routing_key="default"), Queue("gpu", routing_key="gpu"))
app.autodiscover_tasks(["annotate"])
