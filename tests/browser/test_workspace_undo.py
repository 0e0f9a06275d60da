"""Taking back a mis-keyed answer from the keyboard: back to it, change it, and on to the current query."""

from __future__ import annotations

from annotate.models import Annotation, PairwiseChoice, Query
from tests.browser.test_workspace_keyboard import open_workspace, study_with

PROMPTS = [("Name a prime.", ["Nine.", "Seven."]), ("Name a colour.", ["Blue.", "Loud."]), ("Name a fruit.", ["Pear.", "Rock."])]


def current_prompt(page) -> str:
    return page.locator(".turn__content").first.inner_text().strip()


def test_u_goes_back_to_the_last_answer_which_is_changed_with_a_key_and_superseded(page, login, shot):
    study, annotator = study_with(["pairwise"], PROMPTS)
    open_workspace(page, login, study, annotator)
    assert page.locator("[data-back]").count() == 0  # nothing answered yet: nothing to go back to
    page.keyboard.press("1")  # the prime: A (the mis-key)
    page.wait_for_function("() => document.querySelector('.turn__content').textContent.includes('colour')")
    page.wait_for_selector("#workspace-panel[data-ready]")
    assert "Change last answer" in page.locator("[data-back]").inner_text()
    page.keyboard.press("u")
    page.wait_for_selector("[data-revising]")
    page.wait_for_selector("#workspace-panel[data-ready]")
    shot(page, "undo-revising")
    assert current_prompt(page) == "Name a prime."
    mine = page.locator("button[data-current]")
    assert "your answer" in mine.inner_text() and mine.get_attribute("value") == "a"
    page.keyboard.press("e")
    page.keyboard.press("2")  # B, much better
    page.wait_for_selector("#workspace-panel:not(:has([data-revising])) [data-flash] .flash")
    # The panel's init empties the notice and puts it back 50 ms later, so that screen readers say
    # it (workspace.js, speak): wait for its words rather than read them once.
    said = "(words) => document.querySelector('[data-flash]').textContent.includes(words)"
    page.wait_for_function(said, arg="Your answer was changed.")
    assert current_prompt(page) == "Name a colour."  # back where the annotator was
    first, change = Annotation.objects.filter(query__prompt__external_id="p0").order_by("id")
    assert change.supersedes_id == first.pk
    vote = PairwiseChoice.objects.get(annotation=change)
    assert (vote.shown_choice, vote.strength) == ("b", 3)
    assert vote.choice == ("a" if first.assignment.display_order[1] == 0 else "b")  # mapped as it was shown
    assert Query.objects.get(pk=first.query_id).label_count == 1


def test_backspace_steps_further_back_and_escape_returns_to_the_current_query(page, login):
    study, annotator = study_with(["pairwise"], PROMPTS)
    open_workspace(page, login, study, annotator)
    for expected_next in ("colour", "fruit"):
        page.keyboard.press("3")
        page.wait_for_function(f"() => document.querySelector('.turn__content').textContent.includes('{expected_next}')")
        page.wait_for_selector("#workspace-panel[data-ready]")
    page.keyboard.press("Backspace")
    page.wait_for_selector("[data-revising]")
    page.wait_for_selector("#workspace-panel[data-ready]")  # its keys are bound: the next press is not lost
    assert current_prompt(page) == "Name a colour."
    page.keyboard.press("Backspace")
    page.wait_for_function("() => document.querySelector('.turn__content').textContent.includes('prime')")
    page.wait_for_selector("#workspace-panel[data-ready]")
    assert page.locator("[data-revising]").count() == 1
    page.keyboard.press("Escape")
    page.wait_for_selector("#workspace-panel:not(:has([data-revising]))")
    assert current_prompt(page) == "Name a fruit."
    assert Annotation.objects.count() == 2  # looking back changed nothing


def test_a_ranking_reopened_shows_the_order_given_and_is_sent_without_the_unchanged_question(page, login):
    from annotate.models import RankingPart
    from annotate.services.assignments import assignment_next
    from annotate.services.feedback import annotation_submit

    prompts = [("Which city is largest?", ["Tokyo.", "Delhi.", "Shanghai."]), ("Translate 'hello'.", ["Hola.", "Ciao.", "Hi."])]
    study, annotator = study_with(["ranking"], prompts)
    assignment = assignment_next(study=study, annotator=annotator)
    tokyo, delhi, shanghai = (r.pk for r in assignment.query.ordered_responses())
    given = [[shanghai], [tokyo, delhi]]
    annotation_submit(query=assignment.query, annotator=annotator, client_key="k", answer={"ranking": given})
    open_workspace(page, login, study, annotator)
    page.keyboard.press("u")
    page.wait_for_selector("[data-revising]")
    page.wait_for_selector("#workspace-panel[data-ready]")
    board = page.locator("[data-rank-list] .rank-group")
    assert [g.locator("[data-rank-item]").count() for g in board.all()] == [1, 2]  # the tie, as given
    page.keyboard.press("Control+Enter")  # the same ranking again: a deliberate answer, not the order shown
    page.wait_for_selector("#workspace-panel:not(:has([data-revising])) [data-flash] .flash")
    change = Annotation.objects.get(supersedes__isnull=False)
    assert RankingPart.objects.get(annotation=change).groups == given
