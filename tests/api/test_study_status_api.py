"""A study's status and quota over the API: pause, resume, archive, unarchive; who may; what each refuses."""

import json

import pytest

from annotate.models import Annotation, Study
from annotate.services.studies import membership_add
from tests.api.test_pairwise_loop_api import client_for
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db

ACTIONS = ("pause", "resume", "archive", "unarchive")


@pytest.fixture
def people():
    manager, annotator, researcher, reviewer = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator], researchers=[researcher])
    membership_add(study=study, username=reviewer.username, role="reviewer")
    make_items(study, n_prompts=4)
    return study, {"manager": manager, "annotator": annotator, "researcher": researcher, "reviewer": reviewer}


def post(client, study, path: str, body=None):
    return client.post(f"/api/v1/studies/{study.pk}/{path}", body, format="json")


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ["annotator", "researcher", "reviewer", None])
def test_only_a_manager_changes_a_study_s_status(people, role, action):
    study, users = people
    Study.objects.filter(pk=study.pk).update(status="archived" if action == "unarchive" else "paused")
    before = Study.objects.get(pk=study.pk).status
    reply = post(client_for(users.get(role) or UserFactory()), study, f"{action}/")
    if role is None:
        assert reply.status_code == 404
    else:
        assert reply.status_code == 403 and "does not allow you to change it" in reply.json()["detail"]
    assert Study.objects.get(pk=study.pk).status == before


def test_a_manager_pauses_resumes_archives_and_unarchives_and_is_told_where_it_stands(people):
    study, users = people
    client = client_for(users["manager"])
    for action, status in [("pause", "paused"), ("resume", "active"), ("archive", "archived"), ("unarchive", "active")]:
        reply = post(client, study, f"{action}/")
        assert reply.status_code == 200 and reply.json() == {"status": status}, action
    assert client.get(f"/api/v1/studies/{study.pk}/").json()["status"] == "active"
    refused = post(client, study, "resume")  # the trailing slash is optional
    assert refused.status_code == 409
    assert refused.json() == {"detail": "The study is active; only a paused study can be resumed."}


def test_a_paused_study_answers_next_with_a_409_saying_so_and_takes_a_held_answer(people):
    study, users = people
    manager, annotator = client_for(users["manager"]), client_for(users["annotator"])
    held = annotator.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    post(manager, study, "pause/")
    reply = annotator.get(f"/api/v1/studies/{study.pk}/queries/next/")
    assert reply.status_code == 409
    assert reply.json()["detail"] == "This study is paused by its manager: no queries are served until it is resumed."
    stored = annotator.post(
        f"/api/v1/queries/{held['id']}/annotations/?next=1", {"client_key": "k1", "choice": "a", "strength": 2}, format="json"
    )
    assert stored.status_code == 201 and stored.json()["next"] is None
    post(manager, study, "resume/")
    assert annotator.get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 200


def test_an_archived_study_refuses_answers_changes_and_imports_but_still_exports_and_shows_its_figures(people):
    study, users = people
    manager, annotator = client_for(users["manager"]), client_for(users["annotator"])
    first = annotator.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    annotator.post(
        f"/api/v1/queries/{first['id']}/annotations/", {"client_key": "k1", "choice": "a", "strength": 2}, format="json"
    )
    held = annotator.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    post(manager, study, "archive/")
    refusals = [
        annotator.get(f"/api/v1/studies/{study.pk}/queries/next/"),
        annotator.post(
            f"/api/v1/queries/{held['id']}/annotations/", {"client_key": "k2", "choice": "b", "strength": 1}, format="json"
        ),
        annotator.post(f"/api/v1/queries/{held['id']}/skip/", {"reason": "unclear"}, format="json"),
        annotator.post(
            f"/api/v1/annotations/{Annotation.objects.get().pk}/revise/",
            {"client_key": "k3", "choice": "b", "strength": 1},
            format="json",
        ),
        manager.post(
            f"/api/v1/studies/{study.pk}/import/",
            b'{"prompt": "Hi", "responses": ["a", "b"]}',
            content_type="application/x-ndjson",
        ),
        manager.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward"}, format="json"),
        manager.patch(f"/api/v1/studies/{study.pk}/", {"name": "Renamed"}, format="json"),
    ]
    for reply in refusals:
        assert reply.status_code == 409, reply.content
        assert reply.json()["detail"].startswith("This study is archived"), reply.json()
    assert Annotation.objects.count() == 1 and Study.objects.get(pk=study.pk).name == "Study"
    export = manager.get(f"/api/v1/studies/{study.pk}/export/?format=raw")
    assert export.status_code == 200 and len(b"".join(export.streaming_content).splitlines()) == 1
    assert manager.get(f"/api/v1/studies/{study.pk}/agreement/").status_code == 200
    assert client_for(users["researcher"]).get(f"/api/v1/studies/{study.pk}/").json()["status"] == "archived"


def test_the_study_list_hides_archived_studies_unless_asked(people):
    study, users = people
    other = make_study(manager=users["manager"], name="Other")
    client = client_for(users["manager"])
    post(client, study, "archive/")
    assert [s["name"] for s in client.get("/api/v1/studies/").json()] == ["Other"]
    listed = client.get("/api/v1/studies/?archived=1").json()
    assert {(s["id"], s["status"]) for s in listed} == {(study.pk, "archived"), (other.pk, "active")}


def test_the_status_is_read_only_in_a_study_body(people):
    study, users = people
    reply = client_for(users["manager"]).patch(f"/api/v1/studies/{study.pk}/", {"status": "archived"}, format="json")
    assert reply.status_code == 400 and reply.json()["field"] == "status"
    assert Study.objects.get(pk=study.pk).status == "active"


def test_a_manager_sets_a_quota_and_an_annotator_past_it_is_told_with_a_409(people):
    study, users = people
    client, annotator = client_for(users["manager"]), client_for(users["annotator"])
    membership_add(study=study, username=UserFactory().username, role="annotator")  # 2 annotators × 2 cover 4 queries
    reply = client.patch(f"/api/v1/studies/{study.pk}/", {"annotator_quota": 2}, format="json")
    assert reply.status_code == 200 and reply.json()["annotator_quota"] == 2
    for n in range(2):
        query = annotator.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
        annotator.post(f"/api/v1/queries/{query['id']}/annotations/", {"client_key": f"k{n}", "choice": "a"}, format="json")
    reply = annotator.get(f"/api/v1/studies/{study.pk}/queries/next/")
    assert (
        reply.status_code == 409 and reply.json()["detail"] == "You reached this study's quota of 2 answered queries; thank you."
    )
    assert (
        client.patch(f"/api/v1/studies/{study.pk}/", {"annotator_quota": None}, format="json").json()["annotator_quota"] is None
    )
    assert annotator.get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 200


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (-1, "annotator_quota: Ensure this value is greater than or equal to 0."),
        ("3", "annotator_quota: A valid integer is required."),
        (
            1,
            "annotator_quota 1 is below what overlap needs: 1 annotator × 1 = 1 answer, but 4 queries × overlap 1 = 4 labels "
            "are wanted; raise it to at least 4, or leave it empty for no limit.",
        ),
    ],
)
def test_a_bad_quota_is_a_400_naming_the_field_and_nothing_changes(people, value, said):
    study, users = people
    reply = client_for(users["manager"]).patch(f"/api/v1/studies/{study.pk}/", {"annotator_quota": value}, format="json")
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == "annotator_quota" and reply.json()["detail"] == said
    assert Study.objects.get(pk=study.pk).annotator_quota is None


def test_the_status_endpoints_and_the_quota_are_in_the_schema():
    schema = json.loads(client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json").content)
    for action in ACTIONS:
        assert any(p.rstrip("/").endswith(f"/studies/{{id}}/{action}") for p in schema["paths"]), action
    quota = schema["components"]["schemas"]["Study"]["properties"]["annotator_quota"]
    assert quota["minimum"] == 0 and quota.get("nullable") is True
