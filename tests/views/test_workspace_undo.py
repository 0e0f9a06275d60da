"""Changing a recent answer in the workspace: the back link, the panel with the answer filled in, the change stored."""

import pytest
from django.urls import reverse

from annotate.models import Annotation, PairwiseChoice, Query
from annotate.selectors.queues import REVISABLE_ANSWERS
from annotate.views.workspace import NOTHING_EARLIER
from tests.factories import UserFactory, make_items, make_study
from tests.views.test_workspace import HTMX, text_of

pytestmark = pytest.mark.django_db


def back_url(study, before=None) -> str:
    return reverse("workspace-back", args=[study.pk]) + (f"?before={before}" if before else "")


def change_url(study, annotation) -> str:
    return reverse("workspace-revise", args=[study.pk, annotation.pk])


def test_the_back_link_shows_once_something_is_answered(as_user, study, annotator, answer):
    client = as_user(annotator)
    assert "data-back" not in client.get(reverse("workspace", args=[study.pk])).content.decode()
    answer(study, annotator)
    html = client.get(reverse("workspace", args=[study.pk])).content.decode()
    assert f'href="{back_url(study)}"' in html and "Change last answer" in text_of(html)


def test_back_shows_the_last_answer_filled_in_to_change_and_no_skip(as_user, study, annotator, answer):
    answer(study, annotator, "a", 1)
    second = answer(study, annotator, "b", 3)
    annotation = Annotation.objects.get(assignment=second)
    html = as_user(annotator).get(back_url(study), **HTMX).content.decode()
    assert html.lstrip().startswith('<section id="workspace-panel"')
    assert "Changing your answer to an earlier query" in text_of(html)
    assert f'hx-post="{change_url(study, annotation)}"' in html
    assert f'name="client_key" value="web-change-{annotation.pk}"' in html
    assert 'value="b" class="btn btn--choice btn--b" data-key="2" data-current' in html
    assert 'name="strength" value="3" data-key="e" checked' in html
    assert "data-skip" not in html  # an answered query cannot be skipped
    first = Annotation.objects.exclude(pk=annotation.pk).get()
    assert f'href="{back_url(study, annotation.pk)}"' in html  # and further back, to the first
    earlier = as_user(annotator).get(back_url(study, annotation.pk), **HTMX).content.decode()
    assert f'hx-post="{change_url(study, first)}"' in earlier and "data-back" not in earlier  # nothing before it


def test_back_past_the_oldest_answer_says_so_on_the_current_query(as_user, study, annotator, answer):
    answer(study, annotator)
    only = Annotation.objects.get()
    html = as_user(annotator).get(back_url(study, only.pk), **HTMX).content.decode()
    assert NOTHING_EARLIER in html and "data-revising" not in html


def test_without_htmx_back_is_a_whole_page(as_user, study, annotator, answer):
    answer(study, annotator)
    html = as_user(annotator).get(back_url(study)).content.decode()
    assert "site-header" in html and "data-revising" in html


def test_a_change_supersedes_the_answer_and_returns_to_the_current_query(as_user, study, annotator, answer):
    first = answer(study, annotator, "a", 2)
    annotation = Annotation.objects.get(assignment=first)
    client = as_user(annotator)
    current = client.get(reverse("workspace", args=[study.pk])).content.decode()
    body = {"choice": "b", "strength": "1", "client_key": f"web-change-{annotation.pk}"}
    reply = client.post(change_url(study, annotation), body, **HTMX)
    html = reply.content.decode()
    assert reply.status_code == 200
    assert "Your answer was changed. Here is your current query again." in html
    assert "data-revising" not in html
    held = [line for line in current.splitlines() if 'name="client_key"' in line]
    assert held[0].strip() in html  # the same query the annotator was on
    change = Annotation.objects.get(supersedes=annotation)
    assert (change.pairwise.shown_choice, change.pairwise.strength) == ("b", 1)
    assert Query.objects.get(pk=first.query_id).label_count == 1
    again = client.post(change_url(study, annotation), body, **HTMX)
    assert "That change was already saved." in again.content.decode()
    assert Annotation.objects.count() == 2


def test_a_bad_change_shows_the_same_answer_again_with_the_problem(as_user, study, annotator, answer):
    first = answer(study, annotator)
    annotation = Annotation.objects.get(assignment=first)
    reply = as_user(annotator).post(
        change_url(study, annotation), {"choice": "maybe", "client_key": f"web-change-{annotation.pk}"}, **HTMX
    )
    html = reply.content.decode()
    assert "data-revising" in html and f'hx-post="{change_url(study, annotation)}"' in html
    assert 'role="alert"' in html and "choice &#x27;maybe&#x27; is not one of" in html
    assert not Annotation.objects.filter(supersedes=annotation).exists()


def test_an_answer_too_old_to_change_is_refused_on_the_current_query(as_user, manager, annotator, answer):
    study = make_study(manager=manager, annotators=[annotator])
    make_items(study, n_prompts=REVISABLE_ANSWERS + 2)
    oldest = Annotation.objects.get(assignment=answer(study, annotator))
    for _ in range(REVISABLE_ANSWERS):
        answer(study, annotator)
    reply = as_user(annotator).post(change_url(study, oldest), {"choice": "b", "client_key": "web-change-x"}, **HTMX)
    assert f"not among your last {REVISABLE_ANSWERS} answers" in reply.content.decode()
    assert not PairwiseChoice.objects.filter(annotation__supersedes=oldest).exists()


def test_someone_elses_answer_cannot_be_opened_or_changed(as_user, study, annotator, answer):
    annotation = Annotation.objects.get(assignment=answer(study, annotator))
    other = UserFactory(username="bea")
    study.memberships.create(user=other, role="annotator")
    client = as_user(other)
    assert "data-revising" not in client.get(back_url(study), **HTMX).content.decode()
    assert client.post(change_url(study, annotation), {"choice": "b", "client_key": "k"}, **HTMX).status_code == 404


def test_refusals_and_notices_sit_in_a_live_region_in_the_decision_bar(as_user, study, annotator, answer):
    assignment = answer(study, annotator)
    client = as_user(annotator)
    reply = client.post(
        reverse("workspace-submit", args=[study.pk, assignment.query_id]), {"choice": "a", "client_key": "x"}, **HTMX
    )
    html = reply.content.decode()
    decision = html[html.index('<div class="decision card') :]
    assert decision.index('role="status" aria-live="polite" data-flash') < decision.index("<form")
    assert '<p class="alert alert--error" role="alert">You already answered' in decision


def test_the_skip_form_says_how_to_send_it(as_user, study, annotator):
    html = as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode()
    assert "Ctrl + Enter to skip, Esc to cancel" in text_of(html)
