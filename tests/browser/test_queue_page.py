"""The queue page in Chromium: counts, a state filter by click, within the page's CSP."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from annotate.models import Assignment
from tests.factories import UserFactory, make_items, make_study


def test_a_manager_filters_the_queue_to_the_held_queries(page, login, shot):
    manager, ana = UserFactory(username="mina"), UserFactory(username="ana")
    study = make_study(manager=manager, annotators=[ana], name="Helpfulness")
    make_items(study, n_prompts=4)
    held = study.queries.order_by("id")[1]
    Assignment.objects.create(query=held, annotator=ana, display_order=[0, 1], expires_at=timezone.now() + timedelta(minutes=20))
    login(page, manager)
    page.goto(f"/studies/{study.pk}/")
    page.get_by_role("link", name="Queue").click()
    page.wait_for_selector("[data-queue-list]")
    assert page.locator("[data-queue-list] tbody tr").count() == 4
    shot(page, "queue")
    page.locator('[data-state="held"]').click()
    page.wait_for_url("**/queue/?state=held")
    rows = page.locator("[data-queue-list] tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-query") == str(held.pk)
    assert "ana" in rows.first.inner_text()
