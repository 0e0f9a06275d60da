"""Review over the API: answers side by side, a verdict with a note, and the annotator's view of it."""

import json

import pytest
from rest_framework.test import APIClient

from annotate.models import Query
from annotate.selectors.labels import annotator_pseudonym
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    ana, bo, rev = UserFactory(username="ana"), UserFactory(username="bo"), UserFactory(username="rev")
    study = make_study(annotators=[ana, bo], feedback_kinds=["pairwise"], overlap=2)
    membership_add(study=study, username="rev", role="reviewer")
    make_items(study, n_prompts=1)
    answers = []
    for user, choice in ((ana, "tie"), (bo, "both_bad")):
        assignment = assignment_next(study=study, annotator=user)
        answers.append(annotation_submit(query=assignment.query, annotator=user, client_key="k", answer={"choice": choice})[0])
    return study, {"ana": ana, "bo": bo, "rev": rev}, answers


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_manager_sees_every_current_answer_of_a_query_side_by_side_by_username(setup):
    study, _, (first, second) = setup
    reply = as_user(study.created_by).get(f"/api/v1/queries/{first.query_id}/answers/").json()
    assert [(a["id"], a["annotator"], a["answer"]["choice"], a["review"]) for a in reply] == [
        (first.pk, "ana", "tie", None),
        (second.pk, "bo", "both_bad", None),
    ]


def test_a_reviewer_sees_the_annotators_as_exports_name_them(setup):
    _, users, (first, second) = setup
    reply = as_user(users["rev"]).get(f"/api/v1/queries/{first.query_id}/answers/").json()
    expected = [annotator_pseudonym(users["ana"].pk), annotator_pseudonym(users["bo"].pk)]
    assert [a["annotator"] for a in reply] == expected and "ana" not in expected


def test_a_rejection_over_the_api_reopens_the_query_and_the_annotator_reads_the_note(setup):
    study, users, (first, _) = setup
    reviewer = as_user(users["rev"])
    reply = reviewer.post(f"/api/v1/annotations/{first.pk}/review/", {"verdict": "rejected", "note": "Not a tie"}, format="json")
    assert reply.status_code == 201 and reply.json()["verdict"] == "rejected"
    again = reviewer.post(f"/api/v1/annotations/{first.pk}/review/", {"verdict": "rejected"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == reply.json()["id"]
    assert Query.objects.get(pk=first.query_id).label_count == 1
    assert [a["id"] for a in reviewer.get(f"/api/v1/queries/{first.query_id}/answers/").json()] != [first.pk]
    notes = as_user(users["ana"]).get(f"/api/v1/studies/{study.pk}/reviews/mine/").json()
    assert [(n["annotation"], n["verdict"], n["note"]) for n in notes] == [(first.pk, "rejected", "Not a tie")]
    assert as_user(users["bo"]).get(f"/api/v1/studies/{study.pk}/reviews/mine/").json() == []


def test_an_accepted_answer_carries_its_review_in_the_annotators_recent_answers(setup):
    study, users, (first, _) = setup
    as_user(users["rev"]).post(f"/api/v1/annotations/{first.pk}/review/", {"verdict": "accepted", "note": "Good"}, format="json")
    (mine,) = as_user(users["ana"]).get(f"/api/v1/studies/{study.pk}/annotations/mine/").json()
    assert mine["id"] == first.pk and (mine["review"]["verdict"], mine["review"]["note"]) == ("accepted", "Good")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"verdict": "maybe"}, "verdict"), ({"verdict": "accepted", "note": 1}, "note"), ({"verdict": "accepted", "x": 1}, "x")],
)
def test_a_bad_review_is_a_400_naming_the_field(setup, body, field):
    _, users, (first, _) = setup
    reply = as_user(users["rev"]).post(f"/api/v1/annotations/{first.pk}/review/", body, format="json")
    assert reply.status_code == 400 and reply.json()["field"] == field
    assert not first.reviews.exists()


def test_the_schema_lists_the_review_endpoints(setup):
    _, users, _ = setup
    paths = json.loads(as_user(users["rev"]).get("/api/schema/", HTTP_ACCEPT="application/json").content)["paths"]
    assert {"/api/v1/queries/{id}/answers/", "/api/v1/annotations/{id}/review/", "/api/v1/studies/{id}/reviews/mine/"} <= set(
        paths
    )


def test_a_manager_makes_someone_a_reviewer_through_the_members_api(setup):
    study, users, (first, _) = setup
    manager = as_user(study.created_by)
    newcomer = UserFactory(username="val")
    reply = manager.post(f"/api/v1/studies/{study.pk}/members/", {"username": "val", "role": "reviewer"}, format="json")
    assert reply.status_code in (200, 201)
    assert as_user(newcomer).get(f"/api/v1/queries/{first.query_id}/answers/").status_code == 200
    assert as_user(newcomer).get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 403
