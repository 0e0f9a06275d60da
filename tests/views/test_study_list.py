"""The study list: a user's own studies, each with the actions their role allows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_items, make_study

pytestmark = pytest.mark.django_db


def actions_on(html: str, study) -> set[str]:
    found = set()
    if reverse("workspace", args=[study.pk]) in html:
        found.add("annotate")
    if f'href="{reverse("study-dashboard", args=[study.pk])}"' in html:
        found.add("dashboard")
    if reverse("study-runs", args=[study.pk]) in html:
        found.add("runs")
    if f"/api/v1/studies/{study.pk}/export/?format=trl" in html and f"/api/v1/studies/{study.pk}/export/?format=raw" in html:
        found.add("export")
    return found


def test_an_annotator_sees_only_the_studies_they_belong_to(as_user, study, annotator, manager):
    other = make_study(manager=manager, name="Secret other study")
    html = as_user(annotator).get(reverse("study-list")).content.decode()
    assert "Helpfulness" in html
    assert "Secret other study" not in html
    assert reverse("workspace", args=[other.pk]) not in html


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("annotator", {"annotate"}),
        ("manager", {"annotate", "dashboard", "runs", "export"}),
        ("researcher", {"dashboard", "runs", "export"}),
    ],
)
def test_each_role_is_offered_exactly_its_actions(request, as_user, study, who, expected):
    html = as_user(request.getfixturevalue(who)).get(reverse("study-list")).content.decode()
    assert actions_on(html, study) == expected
    assert f">{who.capitalize()}<" in html


def test_an_annotator_sees_their_progress_in_the_list(as_user, study, annotator, answer):
    answer(study, annotator)
    html = as_user(annotator).get(reverse("study-list")).content.decode()
    assert "You: 1 / 3 answered" in html


@pytest.mark.parametrize("who", ["manager", "researcher"])
def test_those_who_watch_a_study_see_its_labels_not_their_own_queue(request, as_user, study, annotator, answer, who):
    answer(study, annotator)
    html = as_user(request.getfixturevalue(who)).get(reverse("study-list")).content.decode()
    assert "Study: 1 / 3 labels" in html
    assert '<progress class="bar" aria-hidden="true" value="33" max="100">' in html
    assert "answered" not in html


def test_a_user_without_studies_is_told_how_to_get_one(as_user, outsider):
    html = as_user(outsider).get(reverse("study-list")).content.decode()
    assert "not a member of any study" in html
    assert "otto" in html


def test_the_export_link_downloads_from_the_api_with_the_browser_session(as_user, study, researcher):
    reply = as_user(researcher).get(f"/api/v1/studies/{study.pk}/export/?format=raw")
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("application/x-ndjson")


def test_the_studies_address_leads_to_the_list(as_user, annotator):
    reply = as_user(annotator).get("/studies/")
    assert reply.status_code == 302 and reply["Location"] == reverse("study-list")


def test_the_labels_of_every_watched_study_are_counted_in_one_statement(as_user, study, manager, researcher, annotator, answer):
    answer(study, annotator)

    def statements_and_page(user) -> tuple[int, str]:
        client = as_user(user)
        client.get(reverse("study-list"))  # the session settles in
        with CaptureQueriesContext(connection) as captured:
            html = client.get(reverse("study-list")).content.decode()
        return len(captured), html

    one = {user: statements_and_page(user)[0] for user in (manager, researcher)}
    for name in ("Second study", "Third study"):
        make_items(make_study(manager=manager, researchers=[researcher], name=name), n_prompts=2)
    for user in (manager, researcher):
        three, html = statements_and_page(user)
        assert three == one[user]
        assert "Study: 1 / 3 labels" in html and html.count("Study: 0 / 2 labels") == 2


@pytest.mark.parametrize("who", ["manager", "annotator", "researcher"])
def test_archived_studies_are_hidden_from_the_list_until_asked_for(request, as_user, study, who):
    from annotate.services.study_status import study_status_change

    user = request.getfixturevalue(who)
    make_study(
        manager=study.created_by,
        annotators=[request.getfixturevalue("annotator")],
        researchers=[request.getfixturevalue("researcher")],
        name="Ongoing",
    )
    study_status_change(study=study, action="archive")
    client = as_user(user)
    html = client.get(reverse("study-list")).content.decode()
    assert "Ongoing" in html and "Helpfulness" not in html
    assert "1 archived study is hidden." in html and f'href="{reverse("study-list")}?archived=1"' in html
    html = client.get(reverse("study-list") + "?archived=1").content.decode()
    assert "Helpfulness" in html and "Ongoing" in html and "Showing 1 archived study." in html
    assert '<span class="badge" data-status>Archived</span>' in html


def test_a_user_whose_only_study_is_archived_is_not_told_they_have_none(as_user, study, annotator):
    from annotate.services.study_status import study_status_change

    study_status_change(study=study, action="archive")
    html = as_user(annotator).get(reverse("study-list")).content.decode()
    assert "not a member of any study" not in html and "Show archived" in html


def test_a_paused_study_is_listed_and_marked_paused(as_user, study, annotator):
    from annotate.services.study_status import study_status_change

    study_status_change(study=study, action="pause")
    html = as_user(annotator).get(reverse("study-list")).content.decode()
    assert "Helpfulness" in html and '<span class="badge" data-status>Paused</span>' in html
    assert "archived" not in html
