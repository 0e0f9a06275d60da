"""Logging in and out, and that every page asks for a login first."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGES = [
    ("study-list", {}),
    ("workspace", {"study_id": 1}),
    ("study-dashboard", {"study_id": 1}),
    ("study-runs", {"study_id": 1}),
    ("run-detail", {"run_id": 1}),
    ("run-progress", {"run_id": 1}),
]


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_every_page_sends_an_anonymous_visitor_to_the_login_page(client, name, kwargs):
    url = reverse(name, kwargs=kwargs)
    reply = client.get(url)
    assert reply.status_code == 302
    assert reply["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ["workspace-submit", "workspace-skip"])
def test_an_anonymous_post_is_sent_to_the_login_page_and_stores_nothing(client, name):
    reply = client.post(reverse(name, kwargs={"study_id": 1, "query_id": 1}), {"choice": "a"})
    assert reply.status_code == 302
    assert reply["Location"].startswith(reverse("login"))


def test_the_login_page_logs_a_user_in_and_lands_on_their_studies(client, annotator):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    reply = client.post(reverse("login"), {"username": "ana", "password": "pw-for-tests"})
    assert reply.status_code == 302
    assert reply["Location"] == reverse("study-list")


def test_a_wrong_password_says_so_on_the_login_page(client, annotator):
    reply = client.post(reverse("login"), {"username": "ana", "password": "nope"})
    assert reply.status_code == 200
    assert b"did not match" in reply.content


def test_logging_out_takes_a_post_and_returns_to_the_login_page(as_user, annotator):
    client = as_user(annotator)
    assert b'action="/logout/"' in client.get(reverse("study-list")).content
    reply = client.post(reverse("logout"))
    assert reply.status_code == 302
    assert reply["Location"] == reverse("login")
    assert client.get(reverse("study-list")).status_code == 302


def test_opening_a_form_only_address_shows_a_page_saying_so(as_user, annotator, study):
    client = as_user(annotator)
    for url in (reverse("logout"), reverse("workspace-submit", kwargs={"study_id": study.pk, "query_id": 1})):
        reply = client.get(url)
        assert reply.status_code == 405 and reply.has_header("Allow")
        assert "cannot be opened as a page. Go back and use the button." in reply.content.decode(), url
    assert client.get("/api/v1/studies/1/import/").json()["detail"] == 'Method "GET" not allowed.'  # the API's own


def test_pages_carry_the_vendored_favicon(client):
    from django.contrib.staticfiles import finders

    assert 'rel="icon" href="/static/favicon.svg"' in client.get(reverse("login")).content.decode()
    assert finders.find("favicon.svg")
