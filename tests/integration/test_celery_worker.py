"""Real `celery worker` (and `celery beat`) processes, on the configured broker (Redis in CI), train reward models."""

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
from tests.factories import BOTH_SIDES_PROMPTS, UserFactory, make_items, make_study
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
def start_celery(tmp_path):
    """Start `celery -A annotate ...` subprocesses on the test database and the configured broker.

    Each gets a process group of its own, so a test can kill a worker whole, pool processes too.
    """
    started = []

    def start(*args: str, ready: str, **extra_env) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{args[0]}-{len(started)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PREFLAB_ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
            **extra_env,
        }
        command = [sys.executable, "-m", "celery", "-A", "annotate", *args, "-l", "info"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(process)
        wait_for(lambda: ready in log.read_text() or process.poll() is not None, timeout=90, what=f"{args[0]} to start", log=log)
        assert process.poll() is None, f"{args[0]} exited at start:\n{log.read_text()[-4000:]}"
        return process, log

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def start_worker(start_celery):
    """Start a worker for both queues; returns the process and its log."""

    def start(*, pool: str = "solo", **extra_env) -> tuple[subprocess.Popen, Path]:
        return start_celery(
            "worker", "-Q", "default,gpu", "-P", pool, "-c", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--purge",
            ready="ready.", **extra_env,
        )  # fmt: skip

    return start


@pytest.fixture
def start_beat(start_celery, tmp_path):
    """Start the one `celery beat`, whose sweep queues again the runs whose worker was lost."""

    def start(**extra_env) -> Path:
        _, log = start_celery("beat", "-s", str(tmp_path / "celerybeat-schedule"), ready="beat: Starting", **extra_env)
        return log

    return start


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
    _, log = start_worker()
    study = labelled_study(BOTH_SIDES_PROMPTS)  # held-out accuracy needs an eval side
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
    assert version.metrics["n_train"] + version.metrics["n_eval"] == BOTH_SIDES_PROMPTS

    from learning.artifacts import load_artifact

    load_artifact(version.artifact_path, expected_checksum=version.checksum)
    client = APIClient()
    client.force_authenticate(study.created_by)
    detail = client.get(f"/api/v1/runs/{run_id}/").json()
    assert detail["progress"] == 1.0 and detail["model_version"]["checksum"] == version.checksum


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_no_model_version_and_the_run_is_retried(start_worker, start_beat):
    start_beat(PREFLAB_RUN_STALE_SECONDS="3")
    _, log = start_worker(pool="prefork", PREFLAB_RUN_STALE_SECONDS="3")
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


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_was_killed_whole_resumes_on_a_new_worker_long_before_the_broker_would_redeliver_it(
    start_worker, start_beat, tiny_encoder_dir
):
    """kill -9 of the worker's process group leaves its task unacknowledged: Redis would hand it
    out again only after the visibility timeout, the filesystem transport never. Beat's sweep
    queues the run again once its heartbeat is PREFLAB_RUN_STALE_SECONDS old."""
    env = {"PREFLAB_RUN_STALE_SECONDS": "5", "OMP_NUM_THREADS": "1"}
    start_beat(**env)
    first, log = start_worker(pool="prefork", **env)
    study = labelled_study()
    # A few hundred steps of a tiny BERT: long enough to be killed in the middle.
    run_id = start_run(study, {"base_model": str(tiny_encoder_dir), "epochs": 10, "batch_size": 1, "max_length": 64})
    running = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status="running", step__gte=1).first(),
        timeout=120,
        what="the run to report a step",
        log=log,
    )
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool process, as when a machine is lost
    first.wait()
    lost = TrainingRun.objects.get(pk=run_id)
    assert lost.status == "running" and lost.step < lost.total_steps, "the run ended before the worker was killed"
    assert not ModelVersion.objects.filter(run_id=run_id).exists()

    _, log = start_worker(pool="prefork", **env)
    visibility_timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    finished = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first(),
        timeout=min(180, visibility_timeout / 10),  # well before the broker would hand the task out again
        what="the lost run to be queued again and finish",
        log=log,
    )
    assert finished.status == "succeeded", finished.error
    assert finished.attempts == 2 and finished.worker != running.worker
    assert ModelVersion.objects.filter(run_id=run_id).count() == 1
