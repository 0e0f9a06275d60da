"""The queue page: counts by state, a filtered, paginated list with who holds what; managers and researchers."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.models import Assignment, Query
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items

pytestmark = pytest.mark.django_db


def url(study, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("study-queue", args=[study.pk]) + (f"?{query}" if query else "")


def listed(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-query="(\d+)"', html)]


def count_of(html: str, state: str) -> int:
    return int(re.search(rf'data-state="{state}"[^>]*><span class="stat__value">(\d+)<', html).group(1))


def test_managers_and_researchers_see_the_queue_and_no_one_else(as_user, client, study, manager, annotator, researcher, outsider):
    reviewer = UserFactory(username="rev")
    membership_add(study=study, username="rev", role="reviewer")
    assert as_user(manager).get(url(study)).status_code == 200
    assert as_user(researcher).get(url(study)).status_code == 200
    assert as_user(annotator).get(url(study)).status_code == 403
    assert as_user(reviewer).get(url(study)).status_code == 403
    assert as_user(outsider).get(url(study)).status_code == 404
    client.logout()
    assert client.get(url(study)).status_code == 302
    assert as_user(manager).post(url(study)).status_code == 405  # read-only


def test_the_page_counts_and_lists_queries_by_state_with_their_holder(as_user, study, manager, annotator):
    first, second, third = study.queries.order_by("id")
    Query.objects.filter(pk=first.pk).update(label_count=1)
    Assignment.objects.create(
        query=second, annotator=annotator, display_order=[0, 1], expires_at=timezone.now() + timedelta(minutes=20)
    )
    html = as_user(manager).get(url(study)).content.decode()
    assert (count_of(html, "open"), count_of(html, "held"), count_of(html, "done"), count_of(html, "gold")) == (1, 1, 1, 0)
    assert 'data-state="waiting"' not in html  # no round loop: nothing waits for a round
    assert listed(html) == [first.pk, second.pk, third.pk]
    held = as_user(manager).get(url(study, state="held")).content.decode()
    assert listed(held) == [second.pk]
    assert "ana" in held and "expires" in held


def test_the_dashboard_links_to_the_queue_for_those_who_may_see_it(as_user, study, manager, annotator, researcher):
    link = f'href="{url(study)}"'
    assert link in as_user(manager).get(reverse("study-dashboard", args=[study.pk])).content.decode()
    assert link in as_user(researcher).get(reverse("study-dashboard", args=[study.pk])).content.decode()


def test_the_list_is_paginated_fifty_a_page_and_keeps_its_filter(as_user, study, manager):
    make_items(study, n_prompts=52, prefix="more")  # 55 queries, all open
    ids = list(study.queries.order_by("id").values_list("pk", flat=True))
    first = as_user(manager).get(url(study, state="open")).content.decode()
    assert listed(first) == ids[:50]
    assert 'href="?state=open&amp;page=2"' in first and "Page 1 of 2" in first
    second = as_user(manager).get(url(study, state="open", page=2)).content.decode()
    assert listed(second) == ids[50:]


def test_an_unknown_state_is_a_400_naming_it(as_user, study, manager):
    reply = as_user(manager).get(url(study, state="stuck"))
    assert reply.status_code == 400
    assert "state must be one of open, held, done, waiting, gold" in reply.content.decode()
