"""Snapshots over the API: create, list, read, download the same bytes every time; bad input and roles."""

import hashlib
import json

import pytest
from rest_framework.test import APIClient

from annotate.models import DatasetExport
from tests.factories import UserFactory, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings.ARTIFACTS_DIR


@pytest.fixture
def people():
    manager, annotator, researcher = UserFactory(), UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator], researchers=[researcher])
    make_items(study, n_prompts=3)
    for query in study.queries.order_by("id")[:2]:
        make_answer(query, annotator, choice="a")
    return study, {"manager": manager, "annotator": annotator, "researcher": researcher, None: UserFactory()}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def download(client, export_id: int):
    reply = client.get(f"/api/v1/exports/{export_id}/download/")
    return reply, b"".join(reply.streaming_content) if reply.status_code == 200 else b""


def test_a_snapshot_downloads_byte_identical_after_more_labels_arrive(people):
    study, users = people
    client = client_for(users["researcher"])
    created = client.post(f"/api/v1/studies/{study.pk}/exports/", {"format": "trl"}, format="json")
    assert created.status_code == 201, created.content
    record = created.json()
    assert (record["row_count"], record["file_format"], record["created_by"]) == (2, "jsonl", users["researcher"].username)
    reply, before = download(client, record["id"])
    assert reply["X-Preflab-Checksum"] == record["checksum"] == hashlib.sha256(before).hexdigest()
    assert reply["Content-Disposition"] == f'attachment; filename="study-{study.pk}-export-{record["id"]}-trl.jsonl"'
    make_answer(study.queries.order_by("id")[2], users["annotator"], choice="b")
    fresh = client.post(f"/api/v1/studies/{study.pk}/exports/", {"format": "trl"}, format="json").json()
    assert fresh["row_count"] == 3 and fresh["checksum"] != record["checksum"]
    assert download(client, record["id"])[1] == before
    assert client.get(f"/api/v1/exports/{record['id']}/").json() == record
    assert [e["id"] for e in client.get(f"/api/v1/studies/{study.pk}/exports/").json()] == [fresh["id"], record["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "trl", "filters": {"rounds": ["1"]}}, "filters.rounds"),
        ({"format": "trl", "filters": {"min_agreement": 2}}, "filters.min_agreement"),
        ({"format": "trl", "filters": {"to": "tomorrow"}}, "filters.to"),
        ({"format": "trl", "filters": {"flagged": False}}, "filters.flagged"),
        ({"format": "trl", "file_format": "xlsx"}, "file_format"),
        ({"format": "yaml"}, "format"),
        ({"format": "trl", "checksum": "x"}, "checksum"),
        ({"format": "trl", "sources": 5}, "sources"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(people, artifacts, body, field):
    study, users = people
    reply = client_for(users["manager"]).post(f"/api/v1/studies/{study.pk}/exports/", body, format="json")
    assert reply.status_code == 400
    assert reply.json()["field"] == field and reply.json()["detail"]
    assert not DatasetExport.objects.exists()
    assert not any(p.is_file() for p in artifacts.rglob("*")) if artifacts.exists() else True


def test_a_snapshot_whose_file_was_removed_is_gone_not_a_server_error(people, artifacts):
    study, users = people
    client = client_for(users["manager"])
    record = client.post(f"/api/v1/studies/{study.pk}/exports/", {"format": "raw"}, format="json").json()
    for path in artifacts.rglob("rows.jsonl"):
        path.unlink()
    reply = client.get(f"/api/v1/exports/{record['id']}/download/")
    assert reply.status_code == 410
    assert reply.json() == {"detail": f"The file of dataset export {record['id']} is no longer on the server."}


@pytest.mark.parametrize("role", ["manager", "annotator", "researcher", None])
def test_only_roles_that_may_export_create_read_and_download_snapshots(people, role):
    study, users = people
    made = client_for(users["manager"]).post(f"/api/v1/studies/{study.pk}/exports/", {"format": "trl"}, format="json").json()
    client = client_for(users[role])
    replies = [
        client.post(f"/api/v1/studies/{study.pk}/exports/", {"format": "kto"}, format="json"),
        client.get(f"/api/v1/studies/{study.pk}/exports/"),
        client.get(f"/api/v1/exports/{made['id']}/"),
        client.get(f"/api/v1/exports/{made['id']}/download/"),
    ]
    expected = {"manager": [201, 200, 200, 200], "researcher": [201, 200, 200, 200], "annotator": [403] * 4, None: [404] * 4}
    assert [r.status_code for r in replies] == expected[role]
    if role is None:  # someone else's export reads exactly as one that does not exist
        assert replies[2].json() == {"detail": f"No dataset export {made['id']}."}


def test_the_schema_lists_the_snapshot_endpoints(people):
    study, users = people
    schema = json.loads(client_for(users["manager"]).get("/api/schema/", HTTP_ACCEPT="application/json").content)
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/studies/{id}/exports/"])
    assert "201" in paths["/api/v1/studies/{id}/exports/"]["post"]["responses"]
    assert "application/octet-stream" in paths["/api/v1/exports/{id}/download/"]["get"]["responses"]["200"]["content"]
    assert set(schema["components"]["schemas"]["DatasetExportCreate"]["properties"]) == {
        "format",
        "file_format",
        "filters",
        "sources",
        "aggregate",
    }
