"""The dashboard's Agreement section in a real Chromium: shown with its figures, within the CSP."""

from __future__ import annotations

from tests.browser.test_content_security_policy import visit
from tests.factories import UserFactory, make_answer, make_items, make_study


def test_the_agreement_section_shows_its_figures_and_keeps_the_policy(page, login, shot):
    ann, ben, cat = (UserFactory(username=name) for name in ("ann", "ben", "cat"))
    study = make_study(annotators=[ann, ben, cat], name="Agreement demo")
    make_items(study, n_prompts=6)
    for i, query in enumerate(study.queries.order_by("id")):
        for person, choice in zip((ann, ben, cat), ("a", "a" if i % 3 else "b", "tie" if i == 4 else "a"), strict=True):
            make_answer(query, person, choice=choice)
    login(page, study.created_by)
    visit(page, f"/studies/{study.pk}/")
    section = page.locator("#agreement")
    section.scroll_into_view_if_needed()
    assert section.is_visible()
    rows = section.locator("[data-agreement-kind=choices] tbody tr")
    assert rows.first.inner_text().split("\t")[:3] == ["Raw agreement", "0.67", "6"]
    shot(page, "dashboard-agreement")
