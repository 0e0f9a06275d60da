"""Who may do what, as a matrix over roles and actions, checked through access.py and the API."""

import pytest
from rest_framework.test import APIClient

from annotate import access
from annotate.errors import Forbidden, NotFound
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db

EXPECTED = {
    "manager": {"view", "annotate", "dashboard", "manage", "export", "train", "history", "review", "queue"},
    "annotator": {"view", "annotate"},
    "researcher": {"view", "dashboard", "export", "history", "queue"},
    "reviewer": {"view", "dashboard", "review"},
    None: set(),
}
ROLES = ["manager", "annotator", "researcher", "reviewer", None]


@pytest.fixture
def people():
    manager, annotator, researcher, reviewer, outsider = (UserFactory() for _ in range(5))
    study = make_study(manager=manager, annotators=[annotator], researchers=[researcher])
    membership_add(study=study, username=reviewer.username, role="reviewer")
    make_items(study, n_prompts=2)
    users = {"manager": manager, "annotator": annotator, "researcher": researcher, "reviewer": reviewer, None: outsider}
    return study, users


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(access.ACTIONS))
def test_each_role_may_do_exactly_its_actions(people, role, action):
    study, users = people
    allowed = action in EXPECTED[role]
    assert access.can(users[role], study, action) is allowed
    if allowed:
        assert access.get_study(users[role], study.pk, action) == study
    else:
        with pytest.raises(NotFound if role is None else Forbidden) as refused:
            access.get_study(users[role], study.pk, action)
        if role is not None:  # said in words, not by the action's internal name
            words = access.ACTION_WORDS[action]
            assert refused.value.message == f"Your role in this study ({role}) does not allow you to {words}."


def test_every_action_has_words_for_its_refusal():
    assert set(access.ACTION_WORDS) == access.ACTIONS


ENDPOINTS = [
    ("get", "/api/v1/studies/{id}/", "view"),
    ("get", "/api/v1/studies/{id}/queries/next/", "annotate"),
    ("post", "/api/v1/studies/{id}/members/", "manage"),
    ("get", "/api/v1/studies/{id}/export/?format=raw", "export"),
    ("get", "/api/v1/studies/{id}/agreement/", "dashboard"),
    ("get", "/api/v1/studies/{id}/flags/", "dashboard"),
    ("get", "/api/v1/studies/{id}/export/?format=trl&exclude_flagged=1", "export"),
    ("get", "/api/v1/studies/{id}/gold/", "dashboard"),
    ("get", "/api/v1/studies/{id}/exports/", "export"),
    ("get", "/api/v1/studies/{id}/runs/", "history"),
    ("get", "/api/v1/studies/{id}/reviews/mine/", "annotate"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "action"), ENDPOINTS)
def test_the_api_answers_404_to_outsiders_and_403_to_roles_without_the_action(people, role, method, url, action):
    study, users = people
    client = APIClient()
    client.force_authenticate(users[role])
    reply = getattr(client, method)(
        url.format(id=study.pk), {"username": users["researcher"].username, "role": "researcher"} if method == "post" else None
    )
    if role is None:
        assert reply.status_code == 404
    elif action in EXPECTED[role]:
        assert reply.status_code in (200, 201)
    else:
        assert reply.status_code == 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("what", ["answers", "review", "page", "query page"])
def test_only_managers_and_reviewers_may_review_and_outsiders_are_told_404(people, role, what):
    from django.test import Client

    from annotate.services.assignments import assignment_next
    from annotate.services.feedback import annotation_submit

    study, users = people
    assignment = assignment_next(study=study, annotator=users["annotator"])
    query = assignment.query
    annotation, _ = annotation_submit(query=query, annotator=users["annotator"], client_key="k", answer={"choice": "tie"})
    client = APIClient()
    client.force_authenticate(users[role])
    if what == "answers":
        reply = client.get(f"/api/v1/queries/{query.pk}/answers/")
    elif what == "review":
        reply = client.post(f"/api/v1/annotations/{annotation.pk}/review/", {"verdict": "accepted"}, format="json")
    else:
        client = Client()
        client.force_login(users[role])
        suffix = f"{query.pk}/" if what == "query page" else ""
        reply = client.get(f"/studies/{study.pk}/review/{suffix}")
    if role is None:
        assert reply.status_code == 404
    elif "review" in EXPECTED[role]:
        assert reply.status_code in (200, 201)
    else:
        assert reply.status_code == 403


def test_an_annotator_lists_only_the_studies_they_belong_to(people):
    study, users = people
    make_study(name="Someone else's")
    client = APIClient()
    client.force_authenticate(users["annotator"])
    assert [s["id"] for s in client.get("/api/v1/studies/").json()] == [study.pk]


def test_an_unknown_action_is_a_programming_error(people):
    study, users = people
    with pytest.raises(ValueError, match="unknown action"):
        access.can(users["manager"], study, "delete-everything")


def someone_elses_run_and_model():
    """A study the caller is not in, with one training run and the model version it registered."""
    from annotate.models import ModelVersion, TrainingRun

    study = make_study(name="Someone else's")
    run = TrainingRun.objects.create(study=study, kind="reward", config={}, created_by=study.created_by, status="succeeded")
    version = ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=1, base_model="minilm", artifact_path="x", checksum="c", data_hash="d"
    )
    return run, version


def answer(client: APIClient, method: str, url: str) -> tuple[int, str, bytes]:
    reply = getattr(client, method)(url, {"response_ids": [1]} if url.endswith("score/") else None, format="json")
    return reply.status_code, reply["Content-Type"], reply.content


@pytest.mark.parametrize(
    ("method", "url", "which"),
    [
        ("get", "/api/v1/runs/{id}/", "run"),
        ("post", "/api/v1/runs/{id}/cancel/", "run"),
        ("post", "/api/v1/models/{id}/score/", "version"),
    ],
)
def test_an_outsider_is_told_of_someone_elses_run_or_model_exactly_as_of_one_that_does_not_exist(method, url, which):
    run, version = someone_elses_run_and_model()
    target = {"run": run, "version": version}[which].pk
    client = APIClient()
    client.force_authenticate(UserFactory())
    hidden = answer(client, method, url.format(id=target))
    version.delete()
    run.delete()
    missing = answer(client, method, url.format(id=target))
    assert hidden == missing  # status, content type and body, byte for byte
    assert hidden[0] == 404


def test_a_member_whose_role_lacks_the_action_is_still_told_403_for_a_run_or_model(people):
    study, users = people
    run, version = someone_elses_run_and_model()
    for obj in (run, version):
        obj.study = study
        obj.save(update_fields=["study"])
    client = APIClient()
    client.force_authenticate(users["annotator"])
    assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 403
    assert client.post(f"/api/v1/models/{version.pk}/score/", {"response_ids": [1]}, format="json").status_code == 403
    client.force_authenticate(users["researcher"])
    assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 200
    assert client.post(f"/api/v1/runs/{run.pk}/cancel/").status_code == 403


def test_a_run_or_model_id_past_the_largest_key_is_not_found():
    client = APIClient()
    client.force_authenticate(UserFactory())
    for n in (2**63, 10**30):
        assert client.get(f"/api/v1/runs/{n}/").json() == {"detail": f"No training run {n}."}
        reply = client.post(f"/api/v1/models/{n}/score/", {"response_ids": [1]}, format="json")
        assert reply.json() == {"detail": f"No model version {n}."}
