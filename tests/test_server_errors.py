"""When the server cannot answer: an unreachable database is a 503 (JSON for the API, a calm page
otherwise), any other failure of the API a JSON 500."""

import socket

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotate.middleware import DATABASE_UNREACHABLE, RETRY_AFTER_SECONDS
from tests.factories import UserFactory, make_study

# Not inside a test's transaction: the connection is closed and reopened to a dead address.
pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    """A local port nothing listens on: one the system just handed out and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_down(tmp_path):
    """Point the connection where no database answers (SQLite: a file in a missing folder); restore it after."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-folder" / "preflab.sqlite3")
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def assert_try_again(reply) -> None:
    assert reply.status_code == 503
    assert reply["Retry-After"] == str(RETRY_AFTER_SECONDS)


def test_the_api_answers_a_json_503_when_the_database_is_unreachable(database_down):
    client = APIClient()
    client.force_authenticate(UserFactory.build(pk=1, is_staff=True))  # not saved: nothing may touch the database
    for reply in (client.get("/api/v1/studies/1/"), client.post("/api/v1/studies/", {"name": "S"}, format="json")):
        assert_try_again(reply)
        assert reply["Content-Type"] == "application/json"
        assert reply.json() == {"detail": DATABASE_UNREACHABLE}


def test_a_token_client_is_told_the_same_before_its_token_can_be_checked(database_down):
    reply = APIClient().get("/api/v1/studies/", HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert_try_again(reply)
    assert reply.json() == {"detail": DATABASE_UNREACHABLE}


def test_a_page_answers_a_plain_try_again_page_when_the_database_is_unreachable(client, request):
    manager = UserFactory()
    study = make_study(manager=manager)
    client.force_login(manager)  # the session is stored while the database is still there
    request.getfixturevalue("database_down")
    for url in (f"/studies/{study.pk}/annotate/", "/"):
        reply = client.get(url)
        assert_try_again(reply)
        assert reply["Content-Type"].startswith("text/html")
        html = reply.content.decode()
        assert "Try again in a moment" in html and "cannot reach its database" in html
        assert "<script>" not in html and "style=" not in html and "Traceback" not in html


def test_any_other_unexpected_error_in_the_api_is_a_json_500_not_an_html_page(monkeypatch):
    from annotate import access

    def broken(user):
        raise RuntimeError("a bug")

    monkeypatch.setattr(access, "studies_for", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(UserFactory())
    reply = client.get("/api/v1/studies/")
    assert reply.status_code == 500
    assert reply["Content-Type"] == "application/json"
    assert reply.json() == {"detail": "The server failed to answer this request; the error was logged."}


def test_the_schema_documents_the_503_of_every_operation():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["paths"]
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert "503" in operation["responses"]
