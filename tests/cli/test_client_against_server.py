"""The `preflab` client against the real app served by pytest-django's live server, checked in the database."""

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.celery import app as celery_app
from annotate.cli import main
from annotate.models import ModelVersion, Prompt, Query, TrainingRun
from tests.factories import UserFactory, make_items, make_run, make_study
from tests.labelling import label_preferring_first_response
from tests.qa_feedback import qa_file, qa_record

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def manager():
    return UserFactory(username="boss")


@pytest.fixture
def preflab(live_server, manager):
    """Run the client in this process as `manager` (or with the token given); returns its exit status."""

    def run(*args: str, token: str | None = None) -> int:
        token = token or Token.objects.get_or_create(user=manager)[0].key
        return main(["--url", live_server.url, "--token", token, "--quiet", *args])

    return run


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_studies_lists_the_callers_studies_with_their_role(preflab, manager, capsys):
    mine = make_study(manager=manager, name="Summaries")
    make_study(name="Someone else's")
    assert preflab("studies") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "ROLE", "NAME"]
    assert [line.split() for line in out[1:]] == [[str(mine.pk), "manager", "Summaries"]]


def test_import_uploads_a_file_into_a_study_named_by_name_and_prints_the_counts(preflab, manager, tmp_path, capsys):
    study = make_study(manager=manager, name="Summaries")
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "x", "prompt": "Sum up", "responses": ["a", "b", "c", "d"]}])
    assert preflab("import", "Summaries", str(items)) == 0
    assert Query.objects.filter(study=study).count() == 6
    assert list(Prompt.objects.filter(study=study).values_list("external_id", flat=True)) == ["x"]
    assert "queries created: 6" in capsys.readouterr().out
    assert preflab("import", str(study.pk), str(items)) == 0  # the same ids again: nothing new, said so
    assert capsys.readouterr().out.rstrip().endswith("queries created: 0 (nothing new)")
    assert Query.objects.filter(study=study).count() == 6


def test_import_and_export_show_their_bars_on_standard_error(live_server, manager, tmp_path, capsys):
    study = make_study(manager=manager)
    records = [{"id": f"p{i}", "prompt": "Sum up", "responses": ["a", "b"]} for i in range(3)]
    items = write_jsonl(tmp_path / "items.jsonl", records)
    token = Token.objects.create(user=manager).key
    assert main(["--url", live_server.url, "--token", token, "import", str(study.pk), str(items)]) == 0
    assert "uploading: 100%" in capsys.readouterr().err
    output = tmp_path / "raw.jsonl"
    assert main(["--url", live_server.url, "--token", token, "export", str(study.pk), "--format", "raw", "-o", str(output)]) == 0
    assert "exporting: " in capsys.readouterr().err


def test_import_passes_the_format_on(preflab, manager, tmp_path, capsys):
    study = make_study(manager=manager)
    data = tmp_path / "dev.json"
    data.write_bytes(qa_file(qa_record()))
    assert preflab("import", str(study.pk), str(data), "--format", "fgrlhf") == 0
    assert "annotations created: " in capsys.readouterr().out
    assert Prompt.objects.filter(study=study).count() == 1


def test_a_bad_import_line_is_named_and_nothing_is_stored(preflab, manager, tmp_path, capsys):
    study = make_study(manager=manager)
    items = write_jsonl(tmp_path / "items.jsonl", [{"prompt": "ok", "responses": ["a", "b"]}, {"prompt": "", "responses": ["a"]}])
    assert preflab("import", str(study.pk), str(items)) == 1
    assert capsys.readouterr().err == "preflab: HTTP 400: Nothing was imported. line 2, field prompt: is empty.\n"
    assert not Prompt.objects.exists()


def test_an_unknown_import_format_is_refused_naming_the_field(preflab, manager, tmp_path, capsys):
    study = make_study(manager=manager)
    items = write_jsonl(tmp_path / "items.jsonl", [{"prompt": "ok", "responses": ["a", "b"]}])
    assert preflab("import", str(study.pk), str(items), "--format", "csv") == 1
    err = capsys.readouterr().err
    assert err.startswith("preflab: HTTP 400: Unknown import format 'csv'; use one of jsonl, ")
    assert err.endswith("(field: format)\n")


def test_a_missing_file_is_named_before_anything_is_sent(preflab, manager, tmp_path, capsys):
    make_study(manager=manager)
    assert preflab("import", "1", str(tmp_path / "nope.jsonl")) == 1
    assert capsys.readouterr().err == f"preflab: No file at {tmp_path / 'nope.jsonl'}.\n"


@pytest.mark.parametrize(
    ("options", "query", "rows"),
    [
        (["--format", "trl"], "format=trl", 4),
        (["--format", "trl", "--aggregate", "majority"], "format=trl&aggregate=majority", 4),
        (["--format", "raw"], "format=raw", 4),
    ],
)
def test_export_writes_exactly_what_the_api_streams_and_prints_its_counts(
    preflab, manager, tmp_path, capsys, options, query, rows
):
    annotator = UserFactory()
    study = make_study(manager=manager, annotators=[annotator])
    make_items(study, n_prompts=4)
    label_preferring_first_response(study, annotator)
    output = tmp_path / "study.jsonl"
    assert preflab("export", str(study.pk), *options, "-o", str(output)) == 0
    api = APIClient()
    api.force_authenticate(manager)
    expected = b"".join(api.get(f"/api/v1/studies/{study.pk}/export/?{query}").streaming_content)
    assert output.read_bytes() == expected
    assert len(expected.splitlines()) == rows
    assert f"rows: {rows}" in capsys.readouterr().err
    assert not (tmp_path / "study.jsonl.partial").exists()


def test_an_export_refused_by_the_api_writes_no_file(preflab, manager, tmp_path, capsys):
    study = make_study(manager=manager)
    output = tmp_path / "study.jsonl"
    assert preflab("export", str(study.pk), "--format", "nope", "-o", str(output)) == 1
    err = capsys.readouterr().err
    assert err.startswith("preflab: HTTP 400: ") and "(field: format)" in err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_token_exits_non_zero_with_the_apis_detail(preflab, capsys):
    assert preflab("studies", token="not-a-token") == 1
    assert capsys.readouterr().err == "preflab: HTTP 401: Invalid token.\n"


def test_an_unknown_study_is_named(preflab, manager, capsys):
    assert preflab("runs", "999") == 1
    assert capsys.readouterr().err.startswith("preflab: HTTP 404: No study 999")
    assert preflab("runs", "Nope") == 1
    assert capsys.readouterr().err == "preflab: No study of yours has the id or name 'Nope'; `preflab studies` lists them.\n"


def test_a_role_without_the_action_hears_why(preflab, capsys):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    token = Token.objects.create(user=annotator).key
    assert preflab("runs", str(study.pk), token=token) == 1
    words = "Your role in this study (annotator) does not allow you to see its training runs and models."
    assert capsys.readouterr().err == f"preflab: HTTP 403: {words}\n"


def test_an_unreachable_server_is_said_plainly(manager, capsys):
    token = Token.objects.create(user=manager).key
    assert main(["--url", "http://127.0.0.1:9", "--token", token, "studies"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("preflab: Cannot reach the Preflab server at http://127.0.0.1:9 (")


def test_no_token_is_said_before_anything_is_sent(live_server, monkeypatch, capsys):
    monkeypatch.delenv("PREFLAB_TOKEN", raising=False)
    assert main(["--url", live_server.url, "studies"]) == 1
    assert "No API token: pass --token or set PREFLAB_TOKEN" in capsys.readouterr().err


def test_train_refused_by_the_api_says_why_and_starts_nothing(preflab, manager, capsys):
    study = make_study(manager=manager)
    assert preflab("train", str(study.pk), "--wait") == 1
    assert capsys.readouterr().err == "preflab: HTTP 400: Nothing was started: a reward model needs 8 usable pairs; has 0.\n"
    assert not TrainingRun.objects.exists()


def test_train_with_a_malformed_setting_is_refused_before_anything_is_sent(preflab, manager, capsys):
    assert preflab("train", "1", "--set", "epochs") == 1
    assert capsys.readouterr().err == "preflab: --set 'epochs': write key=value, e.g. --set epochs=3\n"


def test_train_waits_for_the_run_and_prints_the_registered_version(preflab, manager, monkeypatch, capsys):
    # Celery's eager mode: the worker's task runs inside the server's request, so no broker or worker is needed.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    annotator = UserFactory()
    study = make_study(manager=manager, annotators=[annotator])
    make_items(study, n_prompts=10)
    label_preferring_first_response(study, annotator)
    args = ("train", str(study.pk), "--set", "epochs=1", "--set", "max_length=48", "--set", "batch_size=4", "--wait")
    assert preflab(*args, "--poll", "0.1") == 0
    run = TrainingRun.objects.get(study=study)
    assert run.status == "succeeded" and run.config["epochs"] == 1 and run.config["batch_size"] == 4
    version = ModelVersion.objects.get(run=run)
    out = capsys.readouterr().out
    assert f"Run {run.pk} succeeded: registered reward v{version.version}" in out
    assert "heldout_accuracy: " in out
    assert preflab("runs", str(study.pk)) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split()[:3] == [str(run.pk), "reward", "succeeded"]


def test_a_failed_run_exits_non_zero_with_its_error(preflab, manager, capsys):
    study = make_study(manager=manager)
    run = make_run(study)
    TrainingRun.objects.filter(pk=run.pk).update(status="failed", error="Out of memory")
    assert preflab("run", str(run.pk), "--wait") == 1
    assert capsys.readouterr().err == f"Run {run.pk} failed: Out of memory\n"


def follow_in_a_subprocess(live_server, manager, run, stdin) -> subprocess.Popen:
    """`python -m annotate.cli run N --wait`, returned once it says it is following the run."""
    token = Token.objects.create(user=manager).key
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFLAB_URL": live_server.url, "PREFLAB_TOKEN": token}
    client = subprocess.Popen(
        [sys.executable, "-m", "annotate.cli", "run", str(run.pk), "--wait", "--poll", "0.2", "--quiet"],
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdout.readline().startswith(f"Following run {run.pk}")  # said once it is in the loop
    return client


def test_ctrl_c_while_waiting_cancels_the_run_when_no_one_can_be_asked(live_server, manager):
    run = make_run(make_study(manager=manager))  # queued, and no worker will take it
    client = follow_in_a_subprocess(live_server, manager, run, subprocess.DEVNULL)
    try:
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
    finally:
        client.kill()
    assert client.returncode == 130, err
    assert f"Cancelled run {run.pk}: cancelled." in err
    assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"


@pytest.mark.parametrize(("reply", "status"), [("y", "cancelled"), ("n", "queued")])
def test_ctrl_c_on_a_terminal_asks_whether_to_cancel_the_run(live_server, manager, reply, status):
    run = make_run(make_study(manager=manager))
    terminal, their_end = pty.openpty()
    client = follow_in_a_subprocess(live_server, manager, run, their_end)
    try:
        client.send_signal(signal.SIGINT)
        asked = ""
        while not asked.endswith("[y/N] ") and (char := client.stderr.read(1)):  # "" once it exits without asking
            asked += char
        assert asked.strip() == f"Cancel run {run.pk} on the server too? [y/N]"
        os.write(terminal, reply.encode() + b"\n")
        _, err = client.communicate(timeout=60)
    finally:
        client.kill()
        os.close(terminal)
        os.close(their_end)
    assert client.returncode == 130, err
    assert TrainingRun.objects.get(pk=run.pk).status == status
    if status == "queued":
        assert f"Run {run.pk} goes on; follow it again with: preflab run {run.pk} --wait" in err


def test_status_pauses_archives_and_unarchives_a_study_named_by_name(preflab, manager, capsys):
    study = make_study(manager=manager, name="Summaries")
    assert preflab("status", "Summaries") == 0
    assert capsys.readouterr().out == "Summaries: active.\n"
    assert preflab("status", "Summaries", "pause") == 0
    assert capsys.readouterr().out == "Summaries: paused.\n"
    study.refresh_from_db()
    assert study.status == "paused"
    assert preflab("status", "Summaries", "archive") == 0
    capsys.readouterr()
    # An archived study is left out of the plain study list, but still found by its name.
    assert preflab("status", "Summaries", "unarchive") == 0
    assert capsys.readouterr().out == "Summaries: active.\n"
    study.refresh_from_db()
    assert study.status == "active"


def test_status_refused_by_the_api_says_why(preflab, manager, capsys):
    make_study(manager=manager, name="Summaries")
    assert preflab("status", "Summaries", "resume") == 1
    assert "only a paused study can be resumed" in capsys.readouterr().err
