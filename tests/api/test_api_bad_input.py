"""Input that a fuzzer (schemathesis, on the OpenAPI schema) found to crash the API: each is now a 4xx saying why."""

import json

import pytest
from rest_framework.test import APIClient

from annotate.models import Annotation, Assignment, Prompt, Study, TrainingRun
from tests.api.test_pairwise_loop_api import annotator_with_a_query, client_for, ndjson, token_client
from tests.factories import UserFactory, make_study

pytestmark = pytest.mark.django_db

TOO_BIG = 2**63  # one past the largest primary key


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/studies/{n}/"),
        ("get", "/api/v1/studies/{n}/queries/next/"),
        ("get", "/api/v1/studies/{n}/export/"),
        ("post", "/api/v1/studies/{n}/runs/"),
        ("post", "/api/v1/queries/{n}/annotations/"),
        ("post", "/api/v1/queries/{n}/skip/"),
    ],
)
def test_an_id_past_the_largest_key_is_not_found(method, path):
    client = client_for(UserFactory())
    for n in (TOO_BIG, 10**30):
        reply = getattr(client, method)(path.format(n=n), {}, format="json")
        assert reply.status_code == 404, (path, n, reply.content)
        assert reply.json()["detail"] in {f"No study {n}.", f"No query {n}."}


def test_a_nul_character_in_an_answer_is_refused_naming_the_field_and_nothing_is_stored():
    client, query_id = annotator_with_a_query(n_prompts=1)
    url = f"/api/v1/queries/{query_id}/annotations/"
    reply = client.post(url, {"choice": "a", "client_key": "k\u0000"}, format="json")
    assert reply.status_code == 400
    assert reply.json() == {
        "detail": "client_key contains a NUL character (\\u0000), which text cannot hold.",
        "field": "client_key",
    }
    skip = client.post(f"/api/v1/queries/{query_id}/skip/", {"reason": "off\u0000topic"}, format="json")
    assert skip.status_code == 400 and skip.json()["field"] == "reason"
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(query_id=query_id).status == "active"


def test_a_nul_character_in_an_import_names_its_line_and_field_and_imports_nothing():
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    records = [{"prompt": "fine", "responses": ["a", "b"]}, {"prompt": "also fine", "responses": ["a", "b\u0000"]}]
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", ndjson(records), content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert reply.json()["detail"] == (
        "Nothing was imported. line 2, field responses[1] contains a NUL character (\\u0000), which text cannot hold."
    )
    assert not Prompt.objects.exists()


def test_a_nul_character_in_study_or_run_settings_is_refused_naming_where():
    manager = UserFactory(is_staff=True)
    client = client_for(manager)
    taxonomy = [{"key": "wrong", "label": "Wrong\u0000"}]
    created = client.post("/api/v1/studies/", {"name": "S", "span_taxonomy": taxonomy}, format="json")
    assert created.status_code == 400 and created.json()["field"] == "span_taxonomy[0].label"
    assert not Study.objects.exists()
    study = make_study(manager=manager)
    run = client.post(
        f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": {"base_model": "minilm\u0000"}}, format="json"
    )
    assert run.status_code == 400 and run.json()["field"] == "config.base_model"
    assert not TrainingRun.objects.exists()


def test_a_post_to_an_unknown_api_path_is_a_json_404_even_where_csrf_is_enforced():
    client = APIClient(enforce_csrf_checks=True)
    client.force_authenticate(UserFactory())
    for path in ("/api/v1/nonexistent/", "/api/v1/runs/abc/cancel/"):
        reply = client.post(path, {}, format="json")
        assert reply.status_code == 404 and reply.json() == {"detail": f"No API endpoint at {path}."}


def test_the_annotation_endpoints_take_json_only():
    """A form would carry strength as the text "2", then be refused for it: say what to send instead."""
    client, query_id = annotator_with_a_query(n_prompts=1)
    reply = client.post(
        f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "strength": 2, "client_key": "k"}, format="multipart"
    )
    assert reply.status_code == 415 and "multipart/form-data" in reply.json()["detail"]
    assert not Annotation.objects.exists()


def test_a_skip_reason_past_its_limit_is_refused_not_cut():
    client, query_id = annotator_with_a_query(n_prompts=1)
    reply = client.post(f"/api/v1/queries/{query_id}/skip/", {"reason": "x" * 2001}, format="json")
    assert reply.status_code == 400
    assert reply.json() == {"detail": "reason is longer than 2000 characters (2001).", "field": "reason"}
    assert Assignment.objects.get(query_id=query_id).status == "active"
    kept = client.post(f"/api/v1/queries/{query_id}/skip/", {"reason": "y" * 2000}, format="json")
    assert kept.status_code == 200
    assert Assignment.objects.get(query_id=query_id).skip_reason == "y" * 2000


def test_cancelling_a_finished_run_is_a_conflict():
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    run = TrainingRun.objects.create(study=study, kind="reward", config={}, created_by=manager, status="succeeded")
    reply = token_client(manager).post(f"/api/v1/runs/{run.pk}/cancel/")
    assert reply.status_code == 409
    assert reply.json() == {"detail": f"Run {run.pk} is succeeded; only a queued or running run can be cancelled."}


def test_the_schema_documents_what_the_endpoints_answer():
    schema = json.loads(client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json").content)
    paths = schema["paths"]
    assert set(paths["/api/v1/studies/"]["post"]["responses"]) >= {"201"}
    assert set(paths["/api/v1/studies/{id}/members/"]["post"]["responses"]) >= {"201"}
    annotations = paths["/api/v1/queries/{id}/annotations/"]["post"]
    assert list(annotations["requestBody"]["content"]) == ["application/json"]
    assert any(p["name"] == "next" for p in annotations["parameters"])
    skip = paths["/api/v1/queries/{id}/skip/"]["post"]["responses"]["200"]
    assert "content" in skip  # {query, skipped}, not "no body"
    run_kind = schema["components"]["schemas"]["RunCreate"]["properties"]["kind"]
    kinds = schema["components"]["schemas"][run_kind["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert kinds == ["reward", "span_reward", "rating_reward", "features"]
    overlap = schema["components"]["schemas"]["Study"]["properties"]["overlap"]
    assert (overlap["minimum"], overlap["maximum"]) == (1, 100)
    assert schema["components"]["schemas"]["AnnotationSubmit"]["properties"]["client_key"]["minLength"] == 1


def test_a_study_s_reward_model_is_checked_when_it_is_set_not_when_a_run_starts(tmp_path):
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    missing = str(tmp_path / "no-model-here")
    reply = client_for(manager).patch(f"/api/v1/studies/{study.pk}/", {"reward_model": missing}, format="json")
    assert reply.status_code == 400 and reply.json()["field"] == "reward_model"
    assert "no-model-here" in reply.json()["detail"]
    study.refresh_from_db()
    assert study.reward_model == "minilm"


def test_the_schema_documents_the_error_shape_of_every_operation():
    schema = json.loads(client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json").content)
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "429"):
                answer = operation["responses"][status]["content"]["application/json"]["schema"]
                assert answer == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    submit = schema["paths"]["/api/v1/queries/{id}/annotations/"]["post"]["responses"]
    assert {"409", "410", "413", "415"} <= set(submit)


@pytest.mark.parametrize("active_ms", [2**31, 10**30, 24 * 3600 * 1000 + 1, -1, "5", True, 1.5])
def test_an_active_time_out_of_range_or_of_the_wrong_type_is_refused_naming_it_and_nothing_is_stored(active_ms):
    client, query_id = annotator_with_a_query(n_prompts=1)
    body = {"choice": "a", "client_key": "k", "active_ms": active_ms}
    reply = client.post(f"/api/v1/queries/{query_id}/annotations/", body, format="json")
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == "active_ms"
    assert reply.json()["detail"].startswith("active_ms must be a whole number from 0 to 86400000, not ")
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(query_id=query_id).status == "active"
    kept = client.post(f"/api/v1/queries/{query_id}/annotations/", {**body, "active_ms": 86_400_000}, format="json")
    assert kept.status_code == 201
    assert Annotation.objects.get().active_ms == 86_400_000


def test_a_refused_number_is_not_echoed_whole():
    client, query_id = annotator_with_a_query(n_prompts=1)
    reply = client.post(
        f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "client_key": "k", "active_ms": 10**500}, format="json"
    )
    assert reply.status_code == 400 and len(reply.json()["detail"]) < 120


def test_the_round_size_is_checked_by_the_service_too():
    from annotate.errors import InvalidInput
    from annotate.services.studies import study_update

    study = make_study()
    with pytest.raises(InvalidInput) as refused:
        study_update(study=study, round_size=2**31)
    assert refused.value.field == "round_size"
    assert study_update(study=study, round_size=2**31 - 1).round_size == 2**31 - 1


@pytest.mark.parametrize(
    ("key", "value"), [("epochs", 10**30), ("batch_size", 2**31), ("seed", 2**64), ("seed", -1), ("max_length", 10**9)]
)
def test_a_run_config_number_out_of_range_is_refused_naming_it(key, value):
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    reply = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": {key: value}}, format="json"
    )
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == f"config.{key}"
    assert not TrainingRun.objects.exists()


def test_a_response_id_past_the_largest_key_is_refused_when_scoring():
    from annotate.models import ModelVersion

    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    run = TrainingRun.objects.create(study=study, kind="reward", config={}, created_by=manager, status="succeeded")
    version = ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=1, base_model="minilm", artifact_path="x", checksum="c", data_hash="d"
    )
    reply = client_for(manager).post(f"/api/v1/models/{version.pk}/score/", {"response_ids": [10**30]}, format="json")
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"].startswith("response_ids")


def test_an_import_that_would_give_a_prompt_more_responses_than_its_column_holds_stores_nothing(monkeypatch):
    from annotate.models import Response
    from annotate.services import items

    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    client = client_for(manager)
    url = f"/api/v1/studies/{study.pk}/import/"
    first = client.post(url, ndjson([{"id": "p", "prompt": "q", "responses": ["a", "b"]}]), content_type="application/x-ndjson")
    assert first.status_code == 201
    monkeypatch.setattr(items, "MAX_RESPONSE_INDEX", 2)
    more = [{"id": "other", "prompt": "r", "responses": ["x", "y"]}, {"id": "p", "prompt": "q", "responses": ["c", "d"]}]
    reply = client.post(url, ndjson(more), content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert reply.json() == {
        "detail": "Nothing was imported. line 2, field responses: id 'p' already has 3 responses, the most one prompt can hold.",
        "field": "responses",
    }
    assert sorted(Response.objects.values_list("text", flat=True)) == ["a", "b"]


def test_the_schema_states_the_ranges_of_the_numbers_it_takes():
    schema = json.loads(client_for(UserFactory()).get("/api/schema/", HTTP_ACCEPT="application/json").content)
    components = schema["components"]["schemas"]
    round_size = components["Study"]["properties"]["round_size"]
    assert (round_size["minimum"], round_size["maximum"]) == (1, 2**31 - 1)
    active_ms = components["AnnotationSubmit"]["properties"]["active_ms"]
    assert (active_ms["minimum"], active_ms["maximum"]) == (0, 86_400_000)


def test_unknown_study_fields_are_refused_all_named_and_nothing_changes():
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    client = client_for(manager)
    reply = client.patch(f"/api/v1/studies/{study.pk}/", {"overlapp": 5, "guidlines": "x", "name": "Kept?"}, format="json")
    assert reply.status_code == 400
    assert reply.json()["field"] == "guidlines"
    assert reply.json()["detail"].startswith("Unknown or read-only field(s) 'guidlines', 'overlapp'; this body takes name, ")
    study.refresh_from_db()
    assert (study.name, study.overlap) == ("Study", 1)
    created = client.post("/api/v1/studies/", {"name": "New", "id": 7}, format="json")
    assert created.status_code == 400 and created.json()["field"] == "id"
    assert Study.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("round_size", 2**31),  # out of range
        ("round_size", 10**30),
        ("round_size", 0),
        ("overlap", 10**30),
        ("overlap", "2"),  # of the wrong type: refused, not converted
        ("overlap", True),
        ("overlap", 2.0),
        ("round_size", "100"),
        ("name", 5),
        ("guidelines", ["a"]),
    ],
)
def test_a_study_field_out_of_range_or_of_the_wrong_type_is_refused_naming_it_and_nothing_changes(field, value):
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    client = client_for(manager)
    reply = client.patch(f"/api/v1/studies/{study.pk}/", {field: value}, format="json")
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == field
    created = client.post("/api/v1/studies/", {"name": "New", field: value}, format="json")
    assert created.status_code == 400 and created.json()["field"] == field
    assert Study.objects.count() == 1
    study.refresh_from_db()
    assert (study.name, study.overlap, study.round_size, study.guidelines) == ("Study", 1, 100, "")


def test_a_study_body_must_be_json():
    reply = client_for(UserFactory(is_staff=True)).post("/api/v1/studies/", {"name": "Form", "overlap": "2"}, format="multipart")
    assert reply.status_code == 415 and "multipart/form-data" in reply.json()["detail"]
    assert not Study.objects.exists()


def test_unknown_fields_in_member_run_and_score_bodies_are_refused():
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    client = client_for(manager)
    member = client.post(f"/api/v1/studies/{study.pk}/members/", {"username": manager.username, "rol": "x"}, format="json")
    assert member.status_code == 400 and member.json()["field"] == "rol"
    run = client.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "confg": {}}, format="json")
    assert run.status_code == 400 and run.json()["field"] == "confg"
    assert not TrainingRun.objects.exists()


def test_a_response_past_the_text_limit_is_refused_naming_its_line_and_field_and_nothing_is_stored():
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    client = client_for(manager)
    url = f"/api/v1/studies/{study.pk}/import/"
    records = [{"prompt": "fine", "responses": ["a", "b"]}, {"prompt": "long", "responses": ["a", "b" * 10_000_000]}]
    reply = client.post(url, ndjson(records), content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert reply.json() == {
        "detail": "Nothing was imported. line 2, field responses[1] is 10,000,000 characters long; "
        "a text may hold at most 100,000 (PREFLAB_MAX_TEXT_CHARS).",
    }
    assert not Prompt.objects.exists()
    at_the_limit = [{"prompt": "x" * 100_000, "responses": ["a", "b" * 100_000]}]
    assert client.post(url, ndjson(at_the_limit), content_type="application/x-ndjson").status_code == 201


def test_a_prompt_message_past_the_text_limit_is_refused(settings):
    settings.PREFLAB_MAX_TEXT_CHARS = 10
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    record = {"prompt": [{"role": "user", "content": "x" * 11}], "responses": ["a", "b"]}
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", ndjson([record]), content_type="application/x-ndjson")
    assert reply.status_code == 400 and "line 1, field prompt[0].content is 11 characters long" in reply.json()["detail"]
    assert not Prompt.objects.exists()


def test_an_fgrlhf_prediction_past_the_text_limit_is_refused_naming_record_and_field(settings):
    from tests.qa_feedback import qa_file, qa_record

    settings.PREFLAB_MAX_TEXT_CHARS = 1000
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    body = qa_file(qa_record(), qa_record(question="Long?", **{"prediction 3": "y" * 1001}))
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/?format=fgrlhf", body, content_type="application/json")
    assert reply.status_code == 400
    assert reply.json()["detail"] == (
        "Nothing was imported. record 2 (array index 1), field prediction 3 is 1,001 characters long; "
        "a text may hold at most 1,000 (PREFLAB_MAX_TEXT_CHARS)."
    )
    assert reply.json()["field"] == "prediction 3"
    assert not Prompt.objects.exists()


@pytest.mark.parametrize("field", ["guidelines", "description"])
def test_study_texts_past_the_limit_are_refused_naming_the_field(settings, field):
    settings.PREFLAB_MAX_TEXT_CHARS = 50
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    reply = client_for(manager).patch(f"/api/v1/studies/{study.pk}/", {field: "g" * 51}, format="json")
    assert reply.status_code == 400 and reply.json()["field"] == field
    study.refresh_from_db()
    assert getattr(study, field) == ""


def test_a_revision_past_the_text_limit_is_refused_even_for_a_long_response(settings):
    from annotate.errors import InvalidInput
    from annotate.services.feedback import check_critiques

    settings.PREFLAB_MAX_TEXT_CHARS = 30_000
    response = "r" * 20_000  # a revision may be twice as long as its response, but not past the limit
    with pytest.raises(InvalidInput) as refused:
        check_critiques([{"response": 1, "critique": "c", "revision": "v" * 30_001}], {1: response})
    assert refused.value.field == "critiques[0].revision"
    assert check_critiques([{"response": 1, "critique": "c", "revision": "v" * 30_000}], {1: response})


def test_an_assignment_held_longer_than_the_time_column_holds_still_saves_its_answer():
    from datetime import timedelta

    from django.utils import timezone

    client, query_id = annotator_with_a_query(n_prompts=1)
    long_ago = timezone.now() - timedelta(days=30)  # PREFLAB_ASSIGNMENT_MINUTES may allow it
    Assignment.objects.filter(query_id=query_id).update(started_at=long_ago, expires_at=timezone.now() + timedelta(days=1))
    reply = client.post(f"/api/v1/queries/{query_id}/annotations/", {"choice": "a", "client_key": "k"}, format="json")
    assert reply.status_code == 201
    assert Annotation.objects.get().time_spent_ms == 2**31 - 1


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"prompt": "q", "responses": ["a", "b"], "metadata": {"score": NaN}}', "holds NaN, which is not a number JSON allows"),
        (
            '{"prompt": "q", "responses": ["a", "b"], "metadata": {"s": -Infinity}}',
            "holds -Infinity, which is not a number JSON allows",
        ),
        (
            '{"prompt": "q", "responses": ["a", "b"], "metadata": {"n": ' + "9" * 5000 + "}}",
            "holds a whole number too long to read",
        ),
    ],
)
def test_an_import_line_with_a_number_json_cannot_store_is_refused_naming_the_line(line, problem):
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    body = b'{"prompt": "fine", "responses": ["a", "b"]}\n' + line.encode()
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/", body, content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert reply.json() == {"detail": f"Nothing was imported. line 2: {problem}."}
    assert not Prompt.objects.exists()


def test_an_fgrlhf_file_with_nan_is_refused():
    from tests.qa_feedback import qa_file, qa_record

    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    body = qa_file(qa_record(gold=float("nan")))  # a valid record otherwise, whose gold would go to metadata
    reply = client_for(manager).post(f"/api/v1/studies/{study.pk}/import/?format=fgrlhf", body, content_type="application/json")
    assert reply.status_code == 400
    assert reply.json() == {"detail": "Nothing was imported: the file holds NaN, which is not a number JSON allows."}
    assert not Prompt.objects.exists()


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_run_config_number_that_is_not_finite_is_refused(value):
    from annotate.errors import InvalidInput
    from annotate.services.training import check_config

    with pytest.raises(InvalidInput) as refused:
        check_config("reward", {"learning_rate": value})
    assert refused.value.field == "config.learning_rate"


def test_spans_posted_by_the_workspace_with_a_number_too_long_to_read_are_refused():
    from annotate.errors import InvalidInput
    from annotate.views.answers import parse_json_list

    with pytest.raises(InvalidInput) as refused:
        parse_json_list('[{"start": ' + "1" * 5000 + "}]", "spans")
    assert refused.value.field == "spans"


@pytest.mark.parametrize(("key", "value"), [("loss", "hinge"), ("ensemble_size", 0), ("lora", "yes"), ("ranking_loss", 3)])
def test_a_run_config_choice_or_type_the_trainer_refuses_is_a_400_naming_it(key, value):
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    reply = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/runs/", {"kind": "reward", "config": {key: value}}, format="json"
    )
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == f"config.{key}" and f"config.{key} must be" in reply.json()["detail"]
    assert not TrainingRun.objects.exists()


def test_a_features_run_with_a_bad_config_is_a_400_naming_the_key():
    manager = UserFactory(is_staff=True)
    study = make_study(manager=manager)
    reply = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/runs/", {"kind": "features", "config": {"model_version": "latest"}}, format="json"
    )
    assert reply.status_code == 400, reply.content
    assert reply.json() == {
        "detail": "config.model_version must be a whole number or null, not 'latest'.",
        "field": "config.model_version",
    }
    assert not TrainingRun.objects.exists()
