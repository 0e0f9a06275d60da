"""GET /api/v1/studies/{id}/agreement/: the study's agreement figures as JSON, and its bad input."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_with_votes():
    ann, ben, rui = UserFactory(username="ann"), UserFactory(username="ben"), UserFactory(username="rui")
    study = make_study(annotators=[ann, ben], researchers=[rui])
    make_items(study, n_prompts=2)
    for query, (first, second) in zip(study.queries.order_by("id"), [("a", "a"), ("a", "b")], strict=True):
        make_answer(query, ann, choice=first)
        make_answer(query, ben, choice=second)
    return study, rui


def get(user, url):
    client = APIClient()
    client.force_authenticate(user)
    return client.get(url)


def test_a_researcher_reads_each_figure_with_the_items_behind_it(study_with_votes):
    study, researcher = study_with_votes
    reply = get(researcher, f"/api/v1/studies/{study.pk}/agreement/?min_shared=2")
    assert reply.status_code == 200
    body = reply.json()
    assert body["min_shared"] == 2
    choices = body["kinds"]["choices"]
    assert choices["raw_agreement"] == {"value": 0.5, "items": 2, "ratings": 4, "reason": ""}
    # ann gave a twice, ben a and b: p_e = 1 · ½, p_o = ½, so κ = 0.
    assert [(k["first"], k["second"], k["value"], k["items"]) for k in choices["cohen_kappa"]] == [("ann", "ben", 0.0, 2)]


def test_min_shared_hides_kappas_resting_on_fewer_items(study_with_votes):
    study, researcher = study_with_votes
    body = get(researcher, f"/api/v1/studies/{study.pk}/agreement/").json()
    assert body["min_shared"] == 5
    assert body["kinds"]["choices"]["cohen_kappa"] == []


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "10001"])
def test_a_bad_min_shared_is_refused_naming_it(study_with_votes, value):
    study, researcher = study_with_votes
    reply = get(researcher, f"/api/v1/studies/{study.pk}/agreement/?min_shared={value}")
    assert reply.status_code == 400
    assert reply.json() == {
        "detail": f"min_shared must be a whole number from 1 to 10000, not {value!r}.",
        "field": "min_shared",
    }


def test_a_study_without_labels_has_no_kinds(study_with_votes):
    study = make_study(manager=study_with_votes[0].created_by, name="Empty")
    assert get(study.created_by, f"/api/v1/studies/{study.pk}/agreement/").json() == {"min_shared": 5, "kinds": {}}
