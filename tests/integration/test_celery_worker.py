"""A real `celery worker` process, on the configured broker (Redis in CI), trains a reward model."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from annotate.models import ModelVersion, TrainingRun
from annotate.tasks import train_model
from tests.factories import UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response

REPO = Path(__file__).resolve().parents[2]


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate, *, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def start_worker(tmp_path):
    """Start worker subprocesses for both queues, on the test database and the configured broker."""
    started = []

    def start(*, pool: str = "solo", **extra_env) -> Path:
        log = tmp_path / f"worker-{len(started)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PREFLAB_ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
            **extra_env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "annotate", "worker", "-Q", "default,gpu", "-P", pool, "-c", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--purge", "-l", "info",
        ]  # fmt: skip
        with log.open("wb") as out:
            worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(worker)
        wait_for(
            lambda: "ready." in log.read_text() or worker.poll() is not None, timeout=90, what="the worker to start", log=log
        )
        assert worker.poll() is None, f"the worker exited at start:\n{log.read_text()[-4000:]}"
        return log

    yield start
    for worker in started:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def labelled_study(n_prompts: int = 14):
    annotator = UserFactory()
    study = make_study(annotators=[annotator], name="Worker study")
    make_items(study, n_prompts=n_prompts)
    assert label_preferring_first_response(study, annotator) == n_prompts
    return study


def start_run(study, config: dict) -> int:
    client = APIClient()
    client.force_authenticate(study.created_by)
    reply = client.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": config}, format="json")
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_a_reward_model_and_registers_its_version(start_worker):
    log = start_worker()
    study = labelled_study()
    run_id = start_run(study, {"epochs": 2, "batch_size": 4, "max_length": 64})
    train_model.delay(run_id)  # a duplicate delivery of the same job

    finished = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first(),
        timeout=420,
        what="the run to finish",
        log=log,
    )
    assert finished.status == "succeeded", finished.error
    assert finished.worker and finished.attempts == 1
    assert "Loading weights" not in log.read_text()  # no progress bars drawn into the worker's log
    wait_for(
        lambda: log.read_text().count("train_model[") >= 4,  # received and succeeded, twice
        timeout=60,
        what="the duplicate delivery to be handled",
        log=log,
    )
    version = ModelVersion.objects.get(run=finished)  # one version: the duplicate trained nothing
    assert version.version == 1 and version.base_model == "minilm"
    assert 0.0 <= version.metrics["heldout_accuracy"] <= 1.0
    assert version.metrics["n_train"] + version.metrics["n_eval"] == 14

    from learning.artifacts import load_artifact

    load_artifact(version.artifact_path, expected_checksum=version.checksum)
    client = APIClient()
    client.force_authenticate(study.created_by)
    detail = client.get(f"/api/v1/runs/{run_id}/").json()
    assert detail["progress"] == 1.0 and detail["model_version"]["checksum"] == version.checksum


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_no_model_version_and_the_run_is_retried(start_worker):
    log = start_worker(pool="prefork", PREFLAB_RUN_STALE_SECONDS="3")
    study = labelled_study()
    run_id = start_run(study, {"epochs": 3, "batch_size": 2, "max_length": 64})
    running = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status="running").first(), timeout=120, what="the run to start", log=log
    )
    pid = int(running.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)  # the pool process running the task, as an OOM kill would
    time.sleep(1)
    assert not ModelVersion.objects.filter(run_id=run_id).exists()

    finished = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first(),
        timeout=420,
        what="the retried run to finish",
        log=log,
    )
    assert finished.status == "succeeded", finished.error
    assert finished.attempts == 2
    assert ModelVersion.objects.filter(run_id=run_id).count() == 1
