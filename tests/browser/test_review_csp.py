"""The review pages keep the Content-Security-Policy in a real Chromium, and a rejection works by mouse."""

from __future__ import annotations

from annotate.models import Annotation, Query
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from tests.browser.test_content_security_policy import settled, visit
from tests.browser.test_workspace_keyboard import study_with


def test_a_manager_rejects_an_answer_on_the_review_page_within_the_policy(page, login):
    study, annotator = study_with(["pairwise", "spans"], [("Name a prime.", ["Nine.", "Seven."])])
    manager = study.memberships.get(role="manager").user
    assignment = assignment_next(study=study, annotator=annotator)
    annotation, _ = annotation_submit(query=assignment.query, annotator=annotator, client_key="k", answer={"choice": "tie"})
    login(page, manager)
    visit(page, f"/studies/{study.pk}/review/")
    page.click(f"a[href='/studies/{study.pk}/review/{annotation.query_id}/']")
    assert settled(page) == []
    page.fill("textarea[name=note]", "Seven is prime: B is better.")
    page.click("button[value=rejected]")
    page.wait_for_selector("text=rejected")
    assert settled(page) == []
    assert Annotation.objects.get(pk=annotation.pk).rejected_by.note == "Seven is prime: B is better."
    assert Query.objects.get(pk=annotation.query_id).label_count == 0
