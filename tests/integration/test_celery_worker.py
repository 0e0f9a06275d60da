"""A real `celery worker` process, on the configured broker (Redis in CI), trains a reward model."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from annotate.models import ModelVersion, TrainingRun
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
def celery_worker_process(tmp_path):
    """A worker subprocess for both queues, on the test database and the configured broker."""
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PREFLAB_ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "annotate",
        "worker",
        "-Q",
        "default,gpu",
        "-P",
        "solo",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--purge",
        "-l",
        "info",
    ]
    with log.open("wb") as out:
        worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: "ready." in log.read_text() or worker.poll() is not None, timeout=90, what="the worker to start", log=log
        )
        assert worker.poll() is None, f"the worker exited at start:\n{log.read_text()[-4000:]}"
        yield log
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_a_reward_model_and_registers_its_version(celery_worker_process):
    annotator = UserFactory()
    study = make_study(annotators=[annotator], name="Worker study")
    make_items(study, n_prompts=14)
    assert label_preferring_first_response(study, annotator) == 14

    client = APIClient()
    client.force_authenticate(study.created_by)
    config = {"epochs": 2, "batch_size": 4, "max_length": 64}
    reply = client.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": config}, format="json")
    assert reply.status_code == 201, reply.content
    run_id = reply.json()["id"]

    finished = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first(),
        timeout=420,
        what="the run to finish",
        log=celery_worker_process,
    )
    assert finished.status == "succeeded", finished.error
    assert finished.worker
    version = ModelVersion.objects.get(run=finished)
    assert version.version == 1 and version.base_model == "minilm"
    assert 0.0 <= version.metrics["heldout_accuracy"] <= 1.0
    assert version.metrics["n_train"] + version.metrics["n_eval"] == 14

    from learning.artifacts import load_artifact

    load_artifact(version.artifact_path, expected_checksum=version.checksum)
    detail = client.get(f"/api/v1/runs/{run_id}/").json()
    assert detail["progress"] == 1.0 and detail["model_version"]["checksum"] == version.checksum
