"""The quickstart: the demo study it sets up, and the server and worker (with beat) it starts on the embedded default."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from annotate import access
from annotate.models import Membership, Query, Study
from annotate.services.demo import DEMO_STUDY_NAME, demo_records

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_demo_has_a_few_dozen_prompts_with_at_least_two_responses_each():
    records = demo_records()
    assert len(records) >= 24
    assert all(len(r["responses"]) >= 2 for r in records)
    assert len({r["prompt"][-1]["content"] for r in records}) == len(records)


@pytest.mark.django_db
def test_quickstart_sets_up_the_demo_study_once(capsys):
    call_command("quickstart", "--no-serve")
    study = Study.objects.get(name=DEMO_STUDY_NAME)
    queries = Query.objects.filter(study=study).count()
    assert queries >= 24
    roles = dict(Membership.objects.filter(study=study).values_list("user__username", "role"))
    assert roles == {"demo-manager": "manager", "demo-annotator": "annotator", "demo-researcher": "researcher"}
    # Only the demo manager may create studies of their own (PREFLAB_STUDY_CREATORS=staff by default).
    creators = [m.user.username for m in Membership.objects.filter(study=study) if access.may_create_studies(m.user)]
    assert creators == ["demo-manager"]
    call_command("quickstart", "--no-serve")
    assert Study.objects.filter(name=DEMO_STUDY_NAME).count() == 1
    assert Query.objects.filter(study=study).count() == queries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quickstart_serves_the_app_and_starts_a_worker_on_sqlite_and_the_filesystem_broker(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}}
    env["PREFLAB_VAR_DIR"] = str(tmp_path)
    env["PREFLAB_ARTIFACTS_DIR"] = str(tmp_path / "artifacts")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "quickstart", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        page = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as reply:
                    page = reply.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert page is not None, "the quickstart never served its login page"
        assert "Preflab" in page
        assert (tmp_path / "preflab.sqlite3").exists()
        worker_log = tmp_path / "worker.log"
        while time.monotonic() < deadline and "ready." not in worker_log.read_text(errors="replace"):
            time.sleep(0.5)
        assert "ready." in worker_log.read_text(errors="replace")
        # Its embedded beat, whose sweep queues again a run whose worker was lost, keeps its state under var/.
        while time.monotonic() < deadline and not list(tmp_path.glob("celerybeat-schedule*")):
            time.sleep(0.5)
        assert "beat: Starting" in worker_log.read_text(errors="replace")
        assert list(tmp_path.glob("celerybeat-schedule*")) and not list(REPO.glob("celerybeat-schedule*"))
        workers = children_of(process.pid)
        assert workers, "the quickstart started no worker process"
    finally:
        process.send_signal(signal.SIGTERM)  # the quickstart alone, as `kill` would: it must stop its worker
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
    text = out.decode(errors="replace")
    assert f"http://127.0.0.1:{port}/" in text and "demo-annotator" in text and "preflab-demo" in text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.2)
    left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the worker outlived the quickstart"


def children_of(pid: int) -> list[int]:
    """The processes whose parent is pid, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
