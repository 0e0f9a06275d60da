"""`preflab rounds`, and how the client speaks HTTP, against a recording server.

The round loop's API (GET/POST /studies/{id}/rounds/, .../rounds/pause/, .../rounds/resume/) is
not served by this checkout yet, so these tests check the requests the client makes and how it
shows the replies that API documents; the replies here follow its serializers' shapes.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.cli import main
from tests.cli.recording_server import RecordingServer

REPO = Path(__file__).resolve().parents[2]
STUDY = {"id": 7, "name": "Summaries", "my_role": "manager"}
ROUND = {
    "id": 31,
    "number": 2,
    "strategy": "d_optimal",
    "size": 40,
    "selected": 40,
    "status": "collecting",
    "message": "",
    "labels": 12,
    "heldout_accuracy": None,
}


@pytest.fixture
def server():
    recording = RecordingServer(replies={("GET", "/api/v1/studies/7/"): (200, STUDY)})
    recording.url = recording.start()
    yield recording
    recording.stop()


def preflab(server, *args: str) -> int:
    return main(["--url", server.url, "--token", "k3y", *args])


def test_rounds_status_lists_the_history_as_a_table(server, capsys):
    first = {**ROUND, "id": 30, "number": 1, "strategy": "random", "status": "done", "labels": 40, "heldout_accuracy": 0.6125}
    server.replies[("GET", "/api/v1/studies/7/rounds/")] = (200, [first, ROUND])
    assert preflab(server, "rounds", "7") == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        ["ROUND", "STATUS", "STRATEGY", "SELECTED", "LABELS", "HELD-OUT", "ACC", "MESSAGE"],
        ["1", "done", "random", "40/40", "40", "0.613"],
        ["2", "collecting", "d_optimal", "40/40", "12"],
    ]
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/api/v1/studies/7/"), ("GET", "/api/v1/studies/7/rounds/")]
    assert all(r.headers["Authorization"] == "Token k3y" for r in server.requests)


def test_rounds_status_before_the_first_round_says_how_to_start(server, capsys):
    server.replies[("GET", "/api/v1/studies/7/rounds/")] = (200, [])
    assert preflab(server, "rounds", "7", "status") == 0
    assert capsys.readouterr().out == "No rounds yet; `preflab rounds 7 start` starts the loop.\n"


def test_rounds_start_posts_to_the_rounds_endpoint(server, capsys):
    server.replies[("POST", "/api/v1/studies/7/rounds/")] = (201, {**ROUND, "status": "selecting", "message": "Selecting 40"})
    assert preflab(server, "rounds", "7", "start") == 0
    assert capsys.readouterr().out == "Round 2 (d_optimal): selecting. Selecting 40\n"
    assert server.requests[-1].method == "POST" and server.requests[-1].path == "/api/v1/studies/7/rounds/"


@pytest.mark.parametrize(("action", "loop_status"), [("pause", "paused"), ("resume", "running")])
def test_rounds_pause_and_resume_post_to_their_endpoints(server, capsys, action, loop_status):
    server.replies[("POST", f"/api/v1/studies/7/rounds/{action}/")] = (200, {"loop_status": loop_status, "current_round": 2})
    assert preflab(server, "rounds", "7", action) == 0
    assert capsys.readouterr().out == f"Loop {loop_status}, current round 2.\n"
    assert (server.requests[-1].method, server.requests[-1].path) == ("POST", f"/api/v1/studies/7/rounds/{action}/")


def test_a_refusal_prints_the_apis_detail_and_field(server, capsys):
    refusal = {"detail": "The loop is already paused.", "field": "loop_status"}
    server.replies[("POST", "/api/v1/studies/7/rounds/pause/")] = (409, refusal)
    assert preflab(server, "rounds", "7", "pause") == 1
    assert capsys.readouterr().err == "preflab: HTTP 409: The loop is already paused. (field: loop_status)\n"


def test_an_error_page_that_is_not_json_is_cut_to_its_first_line(server, capsys):
    server.replies[("GET", "/api/v1/studies/7/rounds/")] = (502, b"502 Bad Gateway\n<html>...</html>")
    assert preflab(server, "rounds", "7") == 1
    assert capsys.readouterr().err == "preflab: HTTP 502: 502 Bad Gateway\n"


def test_an_export_that_stops_short_of_its_announced_rows_is_an_error_and_leaves_no_file(server, tmp_path, capsys):
    rows = b'{"prompt": "1"}\n{"prompt": "2"}\n'  # the server announced 3, then its stream ended
    headers = {"Content-Type": "application/x-ndjson", "X-Preflab-Rows": "3"}
    server.replies[("GET", "/api/v1/studies/7/export/?format=trl")] = (200, rows, headers)
    output = tmp_path / "study.jsonl"
    assert preflab(server, "export", "7", "-o", str(output), "--quiet") == 1
    assert capsys.readouterr().err == "preflab: The export broke off after 2 of its 3 rows.\n"
    assert list(tmp_path.iterdir()) == []
    server.replies[("GET", "/api/v1/studies/7/export/?format=trl")] = (200, rows, {**headers, "X-Preflab-Rows": "2"})
    assert preflab(server, "export", "7", "-o", str(output), "--quiet") == 0
    assert output.read_bytes() == rows


def test_the_connection_options_may_follow_the_command_and_then_win(server, monkeypatch, capsys):
    monkeypatch.setenv("PREFLAB_TOKEN", "from-env")
    server.replies[("GET", "/api/v1/studies/")] = (200, [STUDY])
    assert main(["--url", "http://127.0.0.1:9", "studies", "--url", server.url]) == 0
    assert server.requests[-1].headers["Authorization"] == "Token from-env"
    assert main(["studies", "--url", server.url, "--token", "given"]) == 0
    assert server.requests[-1].headers["Authorization"] == "Token given"


def test_an_unknown_round_action_is_a_usage_error(server, capsys):
    with pytest.raises(SystemExit) as exited:
        preflab(server, "rounds", "7", "rewind")
    assert exited.value.code == 2
    assert "invalid choice: 'rewind'" in capsys.readouterr().err


def test_the_client_runs_without_django_configured_or_its_database_loaded(server):
    """On a laptop with only the API: no settings module, no ORM, no DRF."""
    server.replies[("GET", "/api/v1/studies/")] = (200, [STUDY])
    script = (
        "import sys; from annotate.cli import main; status = main(sys.argv[1:]); "
        "from django.conf import settings; "
        "heavy = ('django.db', 'django.apps', 'rest_framework', 'annotate.models'); "
        "print(status, settings.configured, sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "no.such.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script, "--url", server.url, "--token", "t", "studies"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 False []"
    assert "Summaries" in done.stdout


def test_pyproject_installs_a_preflab_script_whose_target_is_this_main():
    import importlib
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["preflab"].partition(":")
    assert getattr(importlib.import_module(module), name) is main


def test_the_studies_table_sends_no_body_and_accepts_json(server, capsys):
    server.replies[("GET", "/api/v1/studies/")] = (200, [STUDY, {"id": 12, "name": "Long study name", "my_role": "researcher"}])
    assert preflab(server, "studies") == 0
    assert capsys.readouterr().out.splitlines() == [
        "ID  ROLE        NAME",
        "7   manager     Summaries",
        "12  researcher  Long study name",
    ]
    assert server.requests[-1].body == b"" and server.requests[-1].headers["Accept"] == "application/json"
