"""Changing an answer through the API: list the recent ones, send a whole new answer for one."""

import json

import pytest
from rest_framework.test import APIClient

from annotate.models import Annotation, PairwiseChoice, Query
from annotate.selectors.queues import REVISABLE_ANSWERS
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def ana():
    """An annotator, and a pairwise study with more queries than answers one may change: (user, study)."""
    user = UserFactory(username="ana")
    study = make_study(annotators=[user], feedback_kinds=["pairwise"])
    make_items(study, n_prompts=REVISABLE_ANSWERS + 2)
    return user, study


def answer(client, study, choice="a", key=None) -> dict:
    query = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    reply = client.post(
        f"/api/v1/queries/{query['id']}/annotations/", {"client_key": key or f"k{query['id']}", "choice": choice}, format="json"
    )
    assert reply.status_code == 201
    return {**query, "annotation": reply.json()["id"]}


def revise(client, annotation_id: int, body: dict):
    return client.post(f"/api/v1/annotations/{annotation_id}/revise/", body, format="json")


def test_mine_lists_the_recent_answers_newest_first_as_they_were_given(ana):
    annotator, study = ana
    client = client_for(annotator)
    first, second = answer(client, study, "a"), answer(client, study, "tie")
    reply = client.get(f"/api/v1/studies/{study.pk}/annotations/mine/")
    assert reply.status_code == 200
    rows = reply.json()
    assert [r["id"] for r in rows] == [second["annotation"], first["annotation"]]
    assert rows[1]["answer"] == {"choice": "a", "strength": 2}
    assert rows[1]["responses"] == first["responses"]  # in the order shown, so a/b mean the same
    assert rows[1]["query"] == first["id"] and rows[1]["supersedes"] is None


def test_revise_supersedes_the_answer_and_mine_shows_the_new_version(ana):
    annotator, study = ana
    client = client_for(annotator)
    first = answer(client, study, "a")
    reply = revise(client, first["annotation"], {"client_key": "fix-1", "choice": "b", "strength": 3})
    assert reply.status_code == 201
    body = reply.json()
    assert body == {"id": body["id"], "query": first["id"], "supersedes": first["annotation"], "created": True}
    assert Annotation.objects.get(pk=body["id"]).supersedes_id == first["annotation"]
    assert PairwiseChoice.objects.get(annotation_id=body["id"]).shown_choice == "b"
    assert Query.objects.get(pk=first["id"]).label_count == 1
    (row,) = client.get(f"/api/v1/studies/{study.pk}/annotations/mine/").json()
    assert (row["id"], row["supersedes"], row["answer"]) == (body["id"], first["annotation"], {"choice": "b", "strength": 3})
    again = revise(client, first["annotation"], {"client_key": "fix-1", "choice": "b", "strength": 3})
    assert (again.status_code, again.json()["id"]) == (200, body["id"])


def test_revising_a_superseded_or_an_old_answer_is_refused_saying_why(ana):
    annotator, study = ana
    client = client_for(annotator)
    answers = [answer(client, study) for _ in range(REVISABLE_ANSWERS + 1)]
    reply = revise(client, answers[0]["annotation"], {"client_key": "old", "choice": "b"})
    assert reply.status_code == 409
    assert f"not among your last {REVISABLE_ANSWERS} answers" in reply.json()["detail"]
    newest = answers[-1]["annotation"]
    new_id = revise(client, newest, {"client_key": "one", "choice": "b"}).json()["id"]
    reply = revise(client, newest, {"client_key": "two", "choice": "tie"})
    assert reply.status_code == 409 and f"annotation {new_id}" in reply.json()["detail"]


def test_a_bad_revision_names_the_field_and_stores_nothing(ana):
    annotator, study = ana
    client = client_for(annotator)
    first = answer(client, study)
    for body, field in [
        ({"client_key": "x", "choice": "maybe"}, "choice"),
        ({"client_key": "x", "choice": "b", "colour": "red"}, "colour"),
        ({"choice": "b"}, "client_key"),
    ]:
        reply = revise(client, first["annotation"], body)
        assert (reply.status_code, reply.json()["field"]) == (400, field)
    assert Annotation.objects.count() == 1


def test_someone_elses_answer_is_404_and_a_non_member_sees_no_list(ana):
    annotator, study = ana
    first = answer(client_for(annotator), study)
    other = UserFactory(username="bo")
    assert revise(client_for(other), first["annotation"], {"client_key": "x", "choice": "b"}).status_code == 404
    assert client_for(other).get(f"/api/v1/studies/{study.pk}/annotations/mine/").status_code == 404


def test_the_schema_documents_mine_and_revise():
    schema = client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = json.loads(schema.content)["paths"]
    assert "get" in paths["/api/v1/studies/{id}/annotations/mine/"]
    revise_op = paths["/api/v1/annotations/{id}/revise/"]["post"]
    assert {"200", "201", "400", "404", "409"} <= set(revise_op["responses"])
