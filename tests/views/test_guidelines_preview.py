"""The settings page's live guidelines preview: sanitised markdown, for the study's managers only."""

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from annotate.services.studies import membership_add
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class Elements(HTMLParser):
    """Every element of a fragment with its attributes, as a browser would build them."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def url(study) -> str:
    return reverse("study-guidelines-preview", args=[study.pk])


def preview(client, study, text: str):
    return client.post(url(study), {"guidelines": text}, HTTP_HX_REQUEST="true")


def test_the_preview_renders_markdown_as_annotators_see_it(as_user, manager, study):
    reply = preview(as_user(manager), study, "# Rules\n\nPrefer the **correct** answer.\n\n- be fair\n- be quick")
    assert reply.status_code == 200
    html = reply.content.decode()
    assert "<h1>Rules</h1>" in html and "<strong>correct</strong>" in html and "<li>be fair</li>" in html
    assert "<html" not in html  # a fragment for the pane, not a page


def test_a_script_and_an_event_handler_in_the_guidelines_never_come_back_executable(as_user, manager, study):
    hostile = (
        '<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n'
        '[click](javascript:alert(3)) <a href="https://x.example" onclick="alert(4)">x</a>'
    )
    html = preview(as_user(manager), study, hostile).content.decode()
    elements = Elements()
    elements.feed(html)
    assert {"script", "img"}.isdisjoint(tag for tag, _ in elements.found)
    attributes = [(name, value or "") for _, attrs in elements.found for name, value in attrs]
    assert not [name for name, _ in attributes if name.startswith("on")]
    assert not [value for _, value in attributes if "javascript:" in value]
    assert "&lt;script&gt;" in html  # raw HTML is shown as text, never interpreted


def test_guidelines_past_the_text_limit_are_refused_naming_the_limit(as_user, manager, study, settings):
    settings.PREFLAB_MAX_TEXT_CHARS = 50
    reply = preview(as_user(manager), study, "x" * 51)
    assert reply.status_code == 400
    assert "guidelines is 51 characters long; a text may hold at most 50" in reply.content.decode()
    assert preview(as_user(manager), study, "x" * 50).status_code == 200


def test_empty_guidelines_say_annotators_see_none(as_user, manager, study):
    assert "No guidelines yet" in preview(as_user(manager), study, "").content.decode()


def test_only_a_manager_may_preview(as_user, client, study, annotator, researcher, outsider):
    reviewer = UserFactory(username="rev")
    membership_add(study=study, username="rev", role="reviewer")
    for user in (annotator, researcher, reviewer):
        assert preview(as_user(user), study, "# hi").status_code == 403
    assert preview(as_user(outsider), study, "# hi").status_code == 404
    client.logout()
    assert client.post(url(study), {"guidelines": "# hi"}).status_code == 302  # to the login page


def test_the_preview_takes_a_post_only_and_checks_csrf(manager, study):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    assert client.get(url(study)).status_code == 405
    assert client.post(url(study), {"guidelines": "# hi"}).status_code == 403  # no CSRF token
    page = client.get(reverse("study-settings", args=[study.pk]))
    token = page.cookies["csrftoken"].value
    assert client.post(url(study), {"guidelines": "# hi"}, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_the_settings_page_shows_the_current_guidelines_rendered_and_wires_the_preview(as_user, manager, study):
    study.guidelines = "Prefer **short** answers."
    study.save()
    html = as_user(manager).get(reverse("study-settings", args=[study.pk])).content.decode()
    assert 'id="guidelines-preview"' in html and "<strong>short</strong>" in html
    assert f'hx-post="{url(study)}"' in html and "delay:300ms" in html
