"""The API contract of the pairwise loop: create, import, next, submit, export."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import Annotation, Assignment, PairwiseChoice, Prompt, Query, TrainingRun
from tests.factories import UserFactory, jsonl, make_items, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def annotator_with_a_query(n_prompts: int) -> tuple[APIClient, int]:
    """A study of n_prompts pairwise queries, and a client of its annotator who has been handed one."""
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=n_prompts)
    client = client_for(annotator)
    return client, client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()["id"]


def ndjson(records) -> bytes:
    return "\n".join(jsonl(records)).encode()


def test_creating_a_study_makes_its_creator_the_manager():
    user = UserFactory(is_staff=True)
    reply = client_for(user).post("/api/v1/studies/", {"name": "Helpfulness", "overlap": 2}, format="json")
    assert reply.status_code == 201
    assert reply.json()["my_role"] == "manager"
    assert reply.json()["overlap"] == 2


def test_a_study_with_overlap_zero_is_refused_naming_the_field():
    reply = client_for(UserFactory(is_staff=True)).post("/api/v1/studies/", {"name": "X", "overlap": 0}, format="json")
    assert reply.status_code == 400
    assert reply.json()["field"] == "overlap"
    assert reply.json()["detail"] == "overlap: Ensure this value is greater than or equal to 1."


def test_an_overlap_above_100_is_refused_on_create_and_on_change():
    manager = UserFactory(is_staff=True)
    client = client_for(manager)
    reply = client.post("/api/v1/studies/", {"name": "X", "overlap": 101}, format="json")
    assert reply.status_code == 400 and "overlap" in json.dumps(reply.json())
    study = make_study(manager=manager, overlap=100)
    reply = client.patch(f"/api/v1/studies/{study.pk}/", {"overlap": 10**11}, format="json")
    assert reply.status_code == 400 and "overlap" in json.dumps(reply.json())
    study.refresh_from_db()
    assert study.overlap == 100


def test_the_only_manager_cannot_step_down_until_there_is_another():
    manager, deputy = UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[deputy])
    members = f"/api/v1/studies/{study.pk}/members/"
    refused = client_for(manager).post(members, {"username": manager.username, "role": "annotator"})
    assert refused.status_code == 400
    assert refused.json() == {
        "detail": f"{manager.username} is this study's only manager; make someone else a manager first, "
        "or nobody could change the study any more.",
        "field": "role",
    }
    assert client_for(manager).post(members, {"username": deputy.username, "role": "manager"}).status_code == 201
    assert client_for(manager).post(members, {"username": manager.username, "role": "annotator"}).status_code == 201
    assert client_for(manager).get(f"/api/v1/studies/{study.pk}/").json()["my_role"] == "annotator"
    refused = client_for(deputy).post(members, {"username": deputy.username, "role": "researcher"})
    assert refused.status_code == 400  # now the deputy is the only one


def test_only_a_manager_adds_members():
    manager, annotator, newcomer = UserFactory(), UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator])
    refused = client_for(annotator).post(
        f"/api/v1/studies/{study.pk}/members/", {"username": newcomer.username, "role": "annotator"}
    )
    assert refused.status_code == 403
    added = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/members/", {"username": newcomer.username, "role": "researcher"}
    )
    assert added.status_code == 201
    assert added.json() == {"username": newcomer.username, "role": "researcher"}


def test_import_takes_the_file_as_the_body_and_makes_every_pair_a_query():
    manager = UserFactory()
    study = make_study(manager=manager)
    body = ndjson(
        [
            {"id": "q1", "prompt": "Hi", "responses": ["a", "b", "c"]},
            {"prompt": [{"role": "user", "content": "Yo"}], "responses": ["x", "y"]},
        ]
    )
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import", body, content_type="application/x-ndjson")
    assert reply.status_code == 201, reply.content
    assert reply.json()["queries_created"] == 3 + 1
    assert Query.objects.filter(study=study).count() == 4


def test_import_takes_a_multipart_file_field():
    manager = UserFactory()
    study = make_study(manager=manager)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("items.jsonl", ndjson([{"id": 1, "prompt": "Hi", "responses": ["a", "b"]}]))
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", {"file": upload}, format="multipart")
    assert reply.status_code == 201, reply.content
    assert Prompt.objects.get(study=study).external_id == "1"


def test_reimporting_the_same_ids_is_idempotent():
    manager = UserFactory()
    study = make_study(manager=manager)
    body = ndjson([{"id": "q1", "prompt": "Hi", "responses": ["a", "b"]}])
    client = client_for(manager)
    first = client.post(f"/api/v1/studies/{study.pk}/import/", body, content_type="application/x-ndjson")
    again = client.post(f"/api/v1/studies/{study.pk}/import/", body, content_type="application/x-ndjson")
    assert (first.status_code, again.status_code) == (201, 200)  # nothing new the second time
    assert again.json() == {"prompts_created": 0, "prompts_unchanged": 1, "responses_created": 0, "queries_created": 0}
    assert Query.objects.filter(study=study).count() == 1


def test_a_bad_line_names_its_line_and_field_and_stores_nothing():
    manager = UserFactory()
    study = make_study(manager=manager)
    body = ndjson(
        [{"id": "ok", "prompt": "Hi", "responses": ["a", "b"]}, {"id": "bad", "prompt": "Hi", "responses": "not a list"}]
    )
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", body, content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert "line 2" in reply.json()["detail"] and "responses" in reply.json()["detail"]
    assert not Prompt.objects.filter(study=study).exists()


def test_malformed_json_names_its_line():
    manager = UserFactory()
    study = make_study(manager=manager)
    body = b'{"prompt": "Hi", "responses": ["a", "b"]}\n{"prompt": oops}\n'
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", body, content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert "line 2" in reply.json()["detail"]
    assert not Prompt.objects.exists()


def test_next_returns_the_contract_shape_and_204_when_nothing_is_left():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=1)
    client = client_for(annotator)
    reply = client.get(f"/api/v1/studies/{study.pk}/queries/next/")
    assert reply.status_code == 200
    body = reply.json()
    assert body["kind"] == "pairwise"
    assert body["prompt"] == [{"role": "user", "content": "Question 0: what is 0 + 0?"}]
    assert len(body["responses"]) == 2 and {"id", "text"} <= set(body["responses"][0])
    submitted = client.post(
        f"/api/v1/queries/{body['id']}/annotations/", {"choice": "a", "strength": 3, "client_key": "k1"}, format="json"
    )
    assert submitted.status_code == 201
    assert client.get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 204


def test_next_hands_back_the_same_query_until_it_is_answered():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=3)
    client = client_for(annotator)
    first = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    assert client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()["id"] == first["id"]


def test_choice_a_means_the_first_response_shown_whatever_the_stored_order():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=1)
    client = client_for(annotator)
    body = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    Assignment.objects.filter(pk=body["assignment_id"]).update(display_order=[1, 0])
    body = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    query = Query.objects.get(pk=body["id"])
    assert body["responses"][0]["id"] == query.ordered_responses()[1].pk
    client.post(f"/api/v1/queries/{body['id']}/annotations/", {"choice": "a", "strength": 2, "client_key": "k"}, format="json")
    vote = PairwiseChoice.objects.get()
    assert (vote.shown_choice, vote.choice) == ("a", "b")


def test_a_repeated_submit_with_the_same_client_key_stores_one_annotation():
    client, query_id = annotator_with_a_query(n_prompts=2)
    payload = {"choice": "b", "strength": 1, "client_key": "same"}
    first = client.post(f"/api/v1/queries/{query_id}/annotations/", payload, format="json")
    second = client.post(f"/api/v1/queries/{query_id}/annotations/", payload, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Annotation.objects.count() == 1
    assert Query.objects.get(pk=query_id).label_count == 1


def test_an_invalid_choice_is_refused_and_stores_nothing():
    client, query_id = annotator_with_a_query(n_prompts=1)
    reply = client.post(
        f"/api/v1/queries/{query_id}/annotations/", {"choice": "c", "strength": 2, "client_key": "k"}, format="json"
    )
    assert reply.status_code == 400
    assert reply.json()["field"] == "choice"
    bad_strength = client.post(
        f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "strength": 9, "client_key": "k"}, format="json"
    )
    assert bad_strength.status_code == 400 and bad_strength.json()["field"] == "strength"
    assert not Annotation.objects.exists()


def test_another_users_query_is_404():
    alice, bob = UserFactory(), UserFactory()
    study = make_study(annotators=[alice, bob])
    make_items(study, n_prompts=2)
    query_id = client_for(alice).get(f"/api/v1/studies/{study.pk}/queries/next/").json()["id"]
    reply = client_for(bob).post(f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "client_key": "k"}, format="json")
    assert reply.status_code == 404
    assert (
        client_for(bob).post("/api/v1/queries/999999/annotations/", {"choice": "a", "client_key": "k"}, format="json").status_code
        == 404
    )
    assert not Annotation.objects.exists()


def test_an_unknown_study_is_404_and_a_non_member_gets_404_too():
    study = make_study()
    outsider = client_for(UserFactory())
    assert outsider.get("/api/v1/studies/999999/queries/next/").status_code == 404
    assert outsider.get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 404


def test_a_submit_after_expiry_is_refused_saying_so_and_the_query_returns_to_the_pool():
    alice, bob = UserFactory(), UserFactory()
    study = make_study(annotators=[alice, bob])
    make_items(study, n_prompts=1)
    query_id = client_for(alice).get(f"/api/v1/studies/{study.pk}/queries/next/").json()["id"]
    assert client_for(bob).get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 204
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    late = client_for(alice).post(f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "client_key": "k"}, format="json")
    assert late.status_code == 410
    assert "expired" in late.json()["detail"]
    assert not Annotation.objects.exists()
    assert client_for(bob).get(f"/api/v1/studies/{study.pk}/queries/next/").json()["id"] == query_id


def test_overlap_two_hands_each_query_to_two_annotators_and_no_third():
    people = [UserFactory() for _ in range(3)]
    study = make_study(annotators=people, overlap=2)
    make_items(study, n_prompts=1)
    replies = [client_for(p).get(f"/api/v1/studies/{study.pk}/queries/next/") for p in people]
    assert [r.status_code for r in replies] == [200, 200, 204]


def test_a_researcher_can_export_but_not_annotate():
    researcher = UserFactory()
    study = make_study(researchers=[researcher])
    make_items(study, n_prompts=1)
    client = client_for(researcher)
    assert client.get(f"/api/v1/studies/{study.pk}/queries/next/").status_code == 403
    assert client.get(f"/api/v1/studies/{study.pk}/export/?format=trl").status_code == 200


def label_everything(study, annotator, choices):
    client = client_for(annotator)
    for i, choice in enumerate(choices):
        body = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
        client.post(
            f"/api/v1/queries/{body['id']}/annotations/", {"choice": choice, "strength": 3, "client_key": f"k{i}"}, format="json"
        )


def read_jsonl(reply) -> list[dict]:
    return [json.loads(line) for line in b"".join(reply.streaming_content).decode().splitlines()]


def test_trl_export_maps_votes_to_the_true_responses_and_counts_what_it_leaves_out():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=4)
    label_everything(study, annotator, ["a", "b", "tie", "both_bad"])
    reply = client_for(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?format=trl")
    rows = read_jsonl(reply)
    assert len(rows) == 2
    assert reply["X-Preflab-Rows"] == "2"
    assert reply["X-Preflab-Skipped-Ties"] == "1" and reply["X-Preflab-Skipped-Both-Bad"] == "1"
    for row in rows:
        vote = PairwiseChoice.objects.get(annotation_id=row["annotation_id"])
        responses = Query.objects.get(pk=row["query_id"]).ordered_responses()
        winner = responses[0] if vote.choice == "a" else responses[1]
        assert row["chosen"] == [{"role": "assistant", "content": winner.text}]
        assert row["prompt"][0]["role"] == "user"
        assert row["margin"] == 1.0 and row["strength"] == 3
        assert row["annotator"].startswith("ann-") and annotator.username not in row["annotator"]


def test_raw_export_keeps_every_vote_as_given():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=3)
    label_everything(study, annotator, ["a", "tie", "both_bad"])
    rows = read_jsonl(client_for(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?format=raw"))
    assert sorted(r["pairwise"]["shown_choice"] for r in rows) == ["a", "both_bad", "tie"]
    assert all(len(r["display_order"]) == 2 and "choice" in r["pairwise"] for r in rows)


def test_an_unknown_export_format_is_refused_naming_it():
    study = make_study()
    reply = client_for(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?format=csv")
    assert reply.status_code == 400 and "csv" in reply.json()["detail"]


def test_starting_a_run_queues_it_for_a_worker_after_commit(django_capture_on_commit_callbacks):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=8)
    label_preferring_first_response(study, annotator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = client_for(study.created_by).post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward"}, format="json")
    assert reply.status_code == 201
    assert reply.json()["status"] == "queued"
    assert len(callbacks) == 1
    detail = client_for(study.created_by).get(f"/api/v1/runs/{reply.json()['id']}/").json()
    assert detail["config"]["base_model"] == "minilm"


def test_a_run_of_an_unknown_kind_or_config_key_is_refused():
    study = make_study()
    client = client_for(study.created_by)
    assert client.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "policy"}, format="json").status_code == 400
    reply = client.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": {"epochz": 1}}, format="json")
    assert reply.status_code == 400 and "epochz" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("epochs", -1, "a whole number from 1 to 1000"),
        ("epochs", 2.5, "a whole number from 1 to 1000"),
        ("batch_size", True, "a whole number from 1 to 4096"),
        ("learning_rate", 0, "a number above 0"),
        ("eval_fraction", 1, "a number from 0 up to (not including) 1"),
        ("max_length", 4, "a whole number from 8 to 131072"),
    ],
)
def test_a_run_with_a_bad_config_value_is_refused_before_any_worker_sees_it(key, value, wanted):
    study = make_study()
    client = client_for(study.created_by)
    reply = client.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": {key: value}}, format="json")
    assert reply.status_code == 400
    assert reply.json() == {"detail": f"config.{key} must be {wanted}, not {value!r}.", "field": f"config.{key}"}
    assert not TrainingRun.objects.exists()


def test_the_openapi_schema_describes_the_v1_api():
    reply = client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert reply.status_code == 200
    paths = json.loads(reply.content)["paths"]
    assert any("/queries/next" in p for p in paths)


def test_token_auth_works_with_drf_create_token():
    from io import StringIO

    from django.core.management import call_command

    user = UserFactory()
    out = StringIO()
    call_command("drf_create_token", user.username, stdout=out)
    token = out.getvalue().split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/studies/").status_code == 200
    assert APIClient().get("/api/v1/studies/").status_code in (401, 403)


def test_a_submit_with_next_returns_the_following_query_and_null_at_the_end():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=2)
    client = client_for(annotator)
    first = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
    reply = client.post(f"/api/v1/queries/{first['id']}/annotations/?next=1", {"choice": "a", "client_key": "k1"}, format="json")
    following = reply.json()["next"]
    assert reply.status_code == 201 and following["id"] != first["id"] and len(following["responses"]) == 2
    last = client.post(
        f"/api/v1/queries/{following['id']}/annotations/?next=1", {"choice": "b", "client_key": "k2"}, format="json"
    )
    assert last.json()["next"] is None


def test_an_import_body_larger_than_djangos_form_limit_is_accepted(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    manager = UserFactory()
    study = make_study(manager=manager)
    records = [
        {"id": f"big{i}", "prompt": "Say something long.", "responses": ["x" * 300 + str(i), "y" * 300 + str(i)]}
        for i in range(5)
    ]
    body = ndjson(records)
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", body, content_type="application/x-ndjson")
    assert reply.status_code == 201, reply.content
    assert reply.json()["queries_created"] == 5


def token_client(user) -> APIClient:
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_a_wrong_token_or_an_inactive_users_token_is_refused_saying_why():
    user = UserFactory()
    client = token_client(user)
    assert client.get("/api/v1/studies/").status_code == 200
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    reply = wrong.get("/api/v1/studies/")
    assert reply.status_code == 401 and reply.json()["detail"] == "Invalid token."
    user.is_active = False
    user.save(update_fields=["is_active"])
    reply = client.get("/api/v1/studies/")
    assert reply.status_code == 401 and reply.json()["detail"] == "User inactive or deleted."


def test_a_submit_body_that_is_not_an_object_or_lacks_a_text_client_key_is_refused_naming_it():
    client, query_id = annotator_with_a_query(n_prompts=1)
    url = f"/api/v1/queries/{query_id}/annotations/"
    not_object = client.post(url, [{"choice": "a"}], format="json")
    assert not_object.status_code == 400 and not_object.json()["field"] == "body"
    for key in (None, 7, "", " " * 3, "k" * 101):
        reply = client.post(url, {"choice": "a", "client_key": key}, format="json")
        assert reply.status_code == 400 and reply.json()["field"] == "client_key", key
    bad_time = client.post(url, {"choice": "a", "client_key": "k", "active_ms": -5}, format="json")
    assert bad_time.status_code == 400 and bad_time.json()["field"] == "active_ms"
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(query_id=query_id).status == "active"  # a refused submit leaves it live


def test_a_misspelt_or_missing_answer_field_is_named_not_dropped():
    client, query_id = annotator_with_a_query(n_prompts=1)
    url = f"/api/v1/queries/{query_id}/annotations/"
    misspelt = client.post(url, {"choice": "a", "strenght": 3, "client_key": "k"}, format="json")
    assert misspelt.status_code == 400 and misspelt.json()["field"] == "strenght"
    assert misspelt.json()["detail"].startswith("Unknown field 'strenght'; an answer takes ")
    missing = client.post(url, {"strength": 3, "client_key": "k"}, format="json")
    assert missing.json() == {"detail": "choice is missing: give one of a, b, tie, both_bad.", "field": "choice"}
    assert not Annotation.objects.exists()


def test_api_errors_are_json_with_a_detail_everywhere(settings):
    client, query_id = annotator_with_a_query(n_prompts=1)
    no_reason = client.post(f"/api/v1/queries/{query_id}/skip/", {}, format="json")
    assert no_reason.status_code == 400
    assert no_reason.json() == {"detail": "Say why you skip this query.", "field": "reason"}
    nowhere = client.get("/api/v1/no-such-thing/")
    assert nowhere.status_code == 404 and nowhere.json() == {"detail": "No API endpoint at /api/v1/no-such-thing/."}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    huge = client.post(f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "client_key": "k" * 2000}, format="json")
    assert huge.status_code == 413 and huge.json()["field"] == "body"
    assert "too large" in huge.json()["detail"]
    assert Assignment.objects.get(query_id=query_id).status == "active"


def test_the_annotation_loop_runs_a_fixed_handful_of_statements(django_assert_max_num_queries):
    """Each label costs the same few written-out statements however many labels came before."""
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=6)
    client = token_client(annotator)
    for i in range(3):
        # "throttle" is the bad-token count, read from the cache: a statement where the cache is the database.
        with django_assert_max_num_queries(9):  # throttle, auth, access, held, claim, responses, assign (+ savepoints)
            query = client.get(f"/api/v1/studies/{study.pk}/queries/next/").json()
        # close also checks the study is not archived, under a lock an archive waits for (finish_assignment).
        with django_assert_max_num_queries(9):  # throttle, auth, access, close, annotation, choice, count (+ savepoints)
            reply = client.post(
                f"/api/v1/queries/{query['id']}/annotations/", {"choice": "a", "client_key": f"k{i}"}, format="json"
            )
        assert reply.status_code == 201
    assert PairwiseChoice.objects.filter(annotation__query__study=study).count() == 3
