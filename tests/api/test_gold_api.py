"""The gold endpoint: managers mark gold answers, managers and researchers read gold accuracy; refusals name the field."""

import pytest
from rest_framework.test import APIClient

from annotate.models import Query
from tests.factories import UserFactory, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def study_and_people():
    manager, annotator, researcher = UserFactory(), UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator], researchers=[researcher])
    make_items(study, n_prompts=2)
    return study, manager, annotator, researcher


def test_a_manager_marks_a_query_gold_and_its_answers_are_graded(study_and_people):
    study, manager, annotator, researcher = study_and_people
    query = Query.objects.filter(study=study).first()
    url = f"/api/v1/studies/{study.pk}/gold/"
    reply = client_for(manager).post(url, {"query": query.pk, "answer": {"choice": "b"}}, format="json")
    assert reply.status_code == 200 and reply.json() == {"query": query.pk, "is_gold": True, "answer": {"choice": "b"}}
    make_answer(query, annotator, choice="b")
    body = client_for(researcher).get(url).json()
    assert body["gold_queries"] == 1
    [row] = body["annotators"]
    assert (row["annotator"], row["answered"], row["correct"], row["accuracy"]) == (annotator.username, 1, 1, 1.0)
    assert row["interval"][0] == pytest.approx(0.2065, abs=1e-3) and row["interval"][1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "body, field",
    [({"query": 10**9, "answer": {"choice": "a"}}, "query"), ({"answer": {"choice": "a"}}, "query"), ({"query": "Q"}, "query")],
)
def test_marking_gold_with_an_unknown_query_is_refused_naming_it(study_and_people, body, field):
    study, manager, *_ = study_and_people
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/gold/", body, format="json")
    assert reply.status_code == 400 and reply.json()["field"] == field


def test_a_gold_answer_invalid_for_its_query_is_refused_and_nothing_is_marked(study_and_people):
    study, manager, *_ = study_and_people
    query = Query.objects.filter(study=study).first()
    reply = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/gold/", {"query": query.pk, "answer": {"choice": "maybe"}}, format="json"
    )
    assert reply.status_code == 400 and reply.json()["field"] == "gold.choice"
    assert not Query.objects.filter(study=study, is_gold=True).exists()


def test_only_a_manager_may_mark_gold(study_and_people):
    study, _, annotator, researcher = study_and_people
    query = Query.objects.filter(study=study).first()
    for user in (annotator, researcher):
        reply = client_for(user).post(f"/api/v1/studies/{study.pk}/gold/", {"query": query.pk, "answer": None}, format="json")
        assert reply.status_code == 403


def test_an_annotator_who_failed_qualification_gets_403_with_the_reason(study_and_people):
    study, manager, annotator, _ = study_and_people
    client = client_for(manager)
    url = f"/api/v1/studies/{study.pk}/"
    assert client.patch(url, {"qualification_items": 1, "qualification_pass": 1.0}, format="json").status_code == 200
    query = Query.objects.filter(study=study).first()
    client.post(f"/api/v1/studies/{study.pk}/gold/", {"query": query.pk, "answer": {"choice": "a"}}, format="json")
    worker = client_for(annotator)
    served = worker.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    assert served["id"] == query.pk  # qualifying: the gold query first
    wrong = "b" if served["responses"][0]["id"] == query.ordered_responses()[0].pk else "a"
    stored = worker.post(
        f"/api/v1/queries/{query.pk}/annotations/?next=1", {"client_key": "q1", "choice": wrong, "strength": 2}, format="json"
    )
    assert stored.status_code == 201 and stored.json()["next"] is None
    refused = worker.get(f"/api/v1/studies/{study.pk}/queries/next/")
    assert refused.status_code == 403 and "did not qualify" in refused.json()["detail"]
