"""The round loop over the API: history, start or force, pause and resume; who may do which."""

import json

import pytest

from tests.api.test_pairwise_loop_api import client_for
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    manager, annotator, researcher = UserFactory(), UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator], researchers=[researcher], round_size=4)
    make_items(study, n_prompts=6)
    return study, {"manager": manager, "annotator": annotator, "researcher": researcher}


def test_a_manager_starts_the_loop_and_everyone_with_the_dashboard_sees_the_history(people, queued_jobs):
    study, users = people
    started = client_for(users["manager"]).post(f"/api/v1/studies/{study.pk}/rounds/")
    assert started.status_code == 201, started.content
    assert started.json()["number"] == 1 and started.json()["status"] == "selecting"
    assert queued_jobs.kinds() == ["selection"]
    for role in ("manager", "researcher"):
        history = client_for(users[role]).get(f"/api/v1/studies/{study.pk}/rounds/")
        assert [r["number"] for r in history.json()] == [1]
        assert history.json()[0]["runs"] == list(queued_jobs)  # its selection job, listed with the study's runs
    detail = client_for(users["manager"]).get(f"/api/v1/studies/{study.pk}/").json()
    assert (detail["loop_status"], detail["current_round"]) == ("running", 1)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "rounds/"), ("post", "rounds/"), ("post", "rounds/pause/"), ("post", "rounds/resume/")],
)
@pytest.mark.parametrize("role", ["annotator", "researcher", None])
def test_only_a_manager_runs_the_loop_and_annotators_see_no_history(people, role, method, path):
    study, users = people
    user = users.get(role) or UserFactory()
    reply = getattr(client_for(user), method)(f"/api/v1/studies/{study.pk}/{path}")
    if role is None:
        assert reply.status_code == 404
    elif role == "researcher" and method == "get":
        assert reply.status_code == 200
    else:
        assert reply.status_code == 403
        assert "does not allow you" in reply.json()["detail"]


def test_pause_and_resume_say_where_the_loop_stands_and_refuse_what_cannot_be_done(people, queued_jobs):
    study, users = people
    client = client_for(users["manager"])
    refused = client.post(f"/api/v1/studies/{study.pk}/rounds/pause/")
    assert refused.status_code == 409 and refused.json()["detail"].startswith("The round loop is off")
    client.post(f"/api/v1/studies/{study.pk}/rounds/")
    assert client.post(f"/api/v1/studies/{study.pk}/rounds/pause/").json() == {"loop_status": "paused", "current_round": 1}
    again = client.post(f"/api/v1/studies/{study.pk}/rounds/")  # round 1 is still being selected: its job goes again
    assert again.json()["number"] == 1 and len(queued_jobs) == 2 and queued_jobs[0] == queued_jobs[1]
    twice = client.post(f"/api/v1/studies/{study.pk}/rounds/resume/")
    assert twice.json() == {"loop_status": "running", "current_round": 1}
    assert client.post(f"/api/v1/studies/{study.pk}/rounds/resume/").status_code == 409


@pytest.mark.parametrize(
    ("body", "field", "named"),
    [
        ({"selection_strategy": "clairvoyant"}, "selection_strategy", "clairvoyant"),
        ({"selection_strategy": "d_optimal", "selection_params": {"lamda": 1}}, "selection_params", "lamda"),
        ({"selection_strategy": "d_optimal", "selection_params": {"lam": -1}}, "selection_params.lam", "lam"),
        ({"round_size": 0}, "round_size", "round_size"),
    ],
)
def test_an_unknown_strategy_or_parameter_is_a_400_naming_it(people, body, field, named):
    study, users = people
    reply = client_for(users["manager"]).patch(f"/api/v1/studies/{study.pk}/", body, format="json")
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == field and named in reply.json()["detail"]


def test_the_round_endpoints_are_in_the_schema():
    schema = json.loads(client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json").content)
    for path in ("rounds", "rounds/pause", "rounds/resume"):
        assert any(p.rstrip("/").endswith(f"/studies/{{id}}/{path}") for p in schema["paths"]), path


def test_exports_carry_the_round_and_strategy_that_chose_each_label(people, queued_jobs):
    from annotate.models import Round
    from annotate.services.rounds import round_start
    from tests.labelling import label_preferring_first_response

    study, users = people
    round_start(study=study, by=users["manager"])
    queued_jobs.run_all()
    study.refresh_from_db()
    assert label_preferring_first_response(study, users["annotator"]) == Round.objects.get(study=study).selected == 4
    client = client_for(users["manager"])
    for format in ("trl", "raw"):
        reply = client.get(f"/api/v1/studies/{study.pk}/export/?format={format}")
        rows = [json.loads(line) for line in b"".join(reply.streaming_content).splitlines()]
        assert len(rows) == 4
        assert {(row["round"], row["strategy"]) for row in rows} == {(1, "random")}, format


def test_a_selection_run_cannot_be_started_by_hand_over_the_api(people):
    study, users = people
    reply = client_for(users["manager"]).post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "selection"}, format="json")
    assert reply.status_code == 400 and reply.json()["field"] == "kind", reply.content
