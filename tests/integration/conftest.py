"""The worker fixtures of test_celery_worker.py, for every integration test."""

from tests.integration.test_celery_worker import start_celery, start_worker  # noqa: F401
