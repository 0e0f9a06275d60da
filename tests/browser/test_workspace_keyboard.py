"""An annotator answers each kind of query with the keyboard alone, in a real browser."""

from __future__ import annotations

import json

import pytest

from annotate.models import Annotation, Assignment, CritiquePart, PairwiseChoice, Query, RankingPart, RatingPart, SpanPart
from annotate.services.assignments import assignment_next
from annotate.services.items import items_import
from annotate.services.studies import study_update
from tests.factories import UserFactory, jsonl, make_study

# Emoji made of several code points (and more UTF-16 units), CJK, and combining accents.
TRICKY = "Café 👩‍👩‍👧 naïve 東京 e\u0301te\u0301 — fin.\nSecond line ✓."


def study_with(kinds, prompts, **fields):
    """A study asking for `kinds`, its annotator, and the prompts [(prompt, [responses])] imported."""
    annotator = UserFactory(username="ana")
    study = make_study(annotators=[annotator], feedback_kinds=kinds, **fields)
    records = [{"id": f"p{i}", "prompt": prompt, "responses": responses} for i, (prompt, responses) in enumerate(prompts)]
    items_import(study=study, lines=jsonl(records))
    # The study's random order, replaced by the file's: these tests answer the prompts in turn.
    for place, query in enumerate(Query.objects.filter(study=study).order_by("id")):
        Query.objects.filter(pk=query.pk).update(priority=-place)
    return study, annotator


def claim_in_order(study, annotator):
    """Claim the annotator's next query and show its responses in their own order (A = first)."""
    assignment = assignment_next(study=study, annotator=annotator)
    assignment.display_order = list(range(len(assignment.display_order)))
    assignment.save(update_fields=["display_order"])
    return assignment, assignment.query.ordered_responses()


def open_workspace(page, login, study, annotator):
    login(page, annotator)
    page.goto(f"/studies/{study.pk}/annotate/")
    page.wait_for_selector("#workspace-panel[data-ready]")
    return page


def wait_for_next(page, assignment):
    """The panel swapped in after a submit: the next query's, or the all-done screen."""
    page.wait_for_function("id => !document.querySelector(`input[name=client_key][value='web-${id}']`)", arg=assignment.pk)
    page.wait_for_selector("#workspace-panel[data-ready]")


def test_a_pairwise_choice_with_its_strength(page, login, shot):
    study, annotator = study_with(["pairwise"], [("Name a prime.", ["Nine.", "Seven."])])
    assignment, _ = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    shot(page, "pairwise")
    page.keyboard.press("e")
    page.keyboard.press("2")
    page.wait_for_selector("text=All done")
    vote = PairwiseChoice.objects.get()
    assert (vote.shown_choice, vote.choice, vote.strength) == ("b", "b", 3)
    assert vote.annotation.active_ms is not None


def test_a_ranking_with_a_tie_then_a_cannot_rank(page, login, shot):
    prompts = [
        ("Which city is largest?", ["Tokyo.", "Delhi.", "Shanghai.", "São Paulo."]),
        ("Translate 'hello'.", ["Hola.", "Bonjour.", "Ciao."]),
    ]
    study, annotator = study_with(["ranking"], prompts)
    assignment, (a, b, c, d) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    keys = page.keyboard
    keys.press("r")  # focus the ranking: A, B, C, D
    keys.press("3")  # A to rank 3: B, C, A, D
    keys.press("=")  # A ties with the rank above: B, (C A), D
    keys.press("j")  # focus D
    keys.press("Shift+K")  # D up one rank: B, D, (C A)
    keys.press("Alt+ArrowUp")  # and again: D, B, (C A)
    board = page.locator("[data-rank-list]")
    assert board.locator(".rank-group").count() == 3
    assert board.locator(".rank-group--tie [data-rank-item]").all_inner_texts() == ["C\nShanghai.", "A\nTokyo."]
    shot(page, "ranking")
    keys.press("Control+Enter")
    wait_for_next(page, assignment)
    assert RankingPart.objects.get().groups == [[d.pk], [b.pk], [c.pk, a.pk]]

    keys.press("x")
    keys.type("All three say hello in a different language.")
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")
    refused = RankingPart.objects.exclude(cannot_rank_reason="").get()
    assert refused.cannot_rank_reason == "All three say hello in a different language." and refused.groups == []


def selected_text(page) -> str:
    return page.evaluate("() => window.getSelection().toString()")


def test_spans_selected_with_the_keyboard_keep_exact_offsets(page, login, shot):
    study, annotator = study_with(["spans"], [("Describe your trip.", [TRICKY])])
    assignment, _ = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    keys = page.keyboard
    chosen = []

    def select(skip: int, take: int) -> None:
        keys.press("Control+Home")
        for _ in range(skip):
            keys.press("ArrowRight")
        for _ in range(take):
            keys.press("Shift+ArrowRight")
        chosen.append(selected_text(page))

    keys.press("h")  # into the response's text
    select(5, 3)  # the family emoji (one grapheme, five code points), a space and an n
    keys.press("2")  # redundant, straight away
    select(13, 2)  # 東京
    keys.press("Enter")  # the popover, to add a note
    keys.press("4")  # wrong-grounding
    keys.type("Not Kyoto.")
    keys.press("Enter")
    select(7, 8)  # "naïve 東京": overlaps the first span (on its "n") and holds the second whole
    keys.press("1")
    select(16, 3)  # e + combining acute, t, e + combining acute
    keys.press("3")
    keys.press("m")  # missing information about the whole response
    keys.type("No dates.")
    keys.press("Enter")
    assert chosen == ["👩‍👩‍👧 n", "東京", "naïve 東京", "e\u0301te\u0301"]
    assert page.locator("[data-span-list] .span-item").count() == 5
    assert page.locator(".seg").count() >= 5
    shot(page, "spans")
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")

    stored = list(SpanPart.objects.filter(start__isnull=False).order_by("id"))
    assert [TRICKY[s.start : s.end] for s in stored] == chosen
    assert [s.category for s in stored] == ["redundant", "wrong-grounding", "irrelevant", "incoherent"]
    assert stored[1].note == "Not Kyoto."
    missing = SpanPart.objects.get(category="missing-information")
    assert (missing.start, missing.end, missing.note) == (None, None, "No dates.")


def test_a_span_is_edited_and_deleted_before_submitting(page, login):
    study, annotator = study_with(["spans"], [("Say something.", ["One two three four."])])
    claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    keys = page.keyboard
    keys.press("h")
    keys.press("Control+Shift+ArrowRight")  # "One"
    keys.press("1")
    keys.press("End")
    keys.press("Shift+Home")  # the whole line, over the first span
    keys.press("5")
    items = page.locator("[data-span-list] .span-item")
    assert items.count() == 2
    # The list puts the outer span first. Change the inner one's category and note, delete the outer.
    inner, outer = items.filter(has_text="“One”"), items.filter(has_text="“One two three four.”")
    inner.locator("select").focus()
    inner.locator("select").select_option("unverifiable")
    keys.press("Tab")
    keys.type("Which one?")
    outer.get_by_role("button", name="Delete").focus()
    keys.press("Enter")
    assert items.count() == 1
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")
    span = SpanPart.objects.get()
    assert ("One two three four."[span.start : span.end], span.category, span.note) == ("One", "unverifiable", "Which one?")


def test_a_pairwise_choice_with_a_critique_and_revision_of_the_loser(page, login, shot):
    study, annotator = study_with(["pairwise", "critique"], [("Where is Paris?", ["Paris is in Spain.", "Paris is in France."])])
    assignment, (spain, france) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    keys = page.keyboard
    keys.press("2")  # B is better: the critique follows A, the response chosen against
    keys.press("c")
    keys.type("Wrong country.")
    keys.press("Tab")  # into the revision, which starts as response A itself
    keys.press("Control+End")
    for _ in range(len("Spain.")):
        keys.press("Backspace")
    keys.type("France.")
    page.wait_for_selector("[data-diff] ins")
    assert page.locator(f'[data-diff="{spain.pk}"] del').inner_text() == "Spain"
    assert page.locator(f'[data-diff="{spain.pk}"] ins').inner_text() == "France"
    shot(page, "pairwise-critique")
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")
    vote = PairwiseChoice.objects.get()
    assert (vote.choice, vote.strength) == ("b", 2)
    critique = CritiquePart.objects.get()
    assert (critique.response_id, critique.critique, critique.revision) == (spain.pk, "Wrong country.", "Paris is in France.")


def test_a_submit_sent_while_the_revision_diff_is_still_pending_leaves_no_error(page, login):
    """The diff waits for a pause in typing; a submit within that pause replaces the panel first."""
    study, annotator = study_with(["pairwise", "critique"], [("Where is Paris?", ["Paris is in Spain.", "Paris is in France."])])
    claim_in_order(study, annotator)
    page.clock.install()  # the page's timers run only when the test says so
    open_workspace(page, login, study, annotator)
    keys = page.keyboard
    keys.press("2")
    keys.press("c")
    keys.type("Wrong country.")
    keys.press("Tab")
    keys.press("Control+End")
    keys.type(" Really.")  # schedules the diff of the revision
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")
    page.clock.run_for(1000)  # now the diff's timer fires, for a panel that is gone
    assert CritiquePart.objects.get().revision == "Paris is in Spain. Really."
    assert page.js_errors == []


def test_ratings_on_every_aspect_with_a_critique_and_an_unchanged_revision(page, login, shot):
    markdown = (
        "Steps:\n1. Boil water\n2. Add **pasta**\n\n"
        "```python\nprint('done')\n```\n\n"
        "| Time | Temp |\n|---|---|\n| 9 min | 100 °C |"
    )
    study, annotator = study_with(["ratings", "critique"], [("How do I cook pasta?", [markdown])])
    assignment, (response,) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    card = page.locator("[data-response-card]")
    assert card.locator("ol li").count() == 2 and card.locator("pre code").count() == 1 and card.locator("table").count() == 1
    keys = page.keyboard
    keys.press("c")
    keys.type("Says nothing about salt.")
    keys.press("Escape")  # leave the textarea: digits rate the first row still empty
    for digit in "4532":
        keys.press(digit)
    shot(page, "ratings-critique")
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")
    ratings = dict(RatingPart.objects.values_list("aspect", "value"))
    assert ratings == {"instruction_following": 4, "helpfulness": 5, "truthfulness": 3, "honesty": 2}
    critique = CritiquePart.objects.get()
    assert (critique.response_id, critique.critique, critique.revision) == (response.pk, "Says nothing about salt.", "")
    assert Annotation.objects.get().active_ms is not None


def test_a_missing_rating_is_named_before_anything_is_sent(page, login):
    study, annotator = study_with(
        ["ratings"],
        [("Hi?", ["Hello."])],
        rating_aspects=[{"key": "clarity", "label": "Clarity"}, {"key": "tone", "label": "Tone"}],
    )
    claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    page.keyboard.press("5")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".alert--error")
    assert "Rate Tone" in page.locator(".alert--error").inner_text()
    assert not Annotation.objects.exists()
    page.keyboard.press("3")  # focus sits on the Tone row now
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=All done")
    assert dict(RatingPart.objects.values_list("aspect", "value")) == {"clarity": 5, "tone": 3}


@pytest.mark.parametrize(
    "kinds", [["pairwise"], ["pairwise", "spans"], ["ranking"]], ids=["markdown", "plain-text-for-spans", "ranking-board"]
)
def test_hostile_model_output_shows_as_text_and_never_runs(page, login, kinds):
    hostile = [
        "<script>window.__pwned=1</script>",
        '<img src=x onerror="window.__pwned=1">',
        '[click me](javascript:window.__pwned=1) <iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    ]
    study, annotator = study_with(
        kinds, [("<script>window.__pwned=2</script> **bold**", hostile if kinds == ["ranking"] else hostile[:2])]
    )
    claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    cards = page.locator("[data-response-card]")
    page.wait_for_timeout(200)  # give any onerror a chance to fire
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("[data-response-card] script, [data-response-card] img, [data-response-card] iframe").count() == 0
    assert page.locator(".prompt script").count() == 0
    texts = cards.all_inner_texts()
    assert any("<script>window.__pwned=1</script>" in t for t in texts)
    assert any('<img src=x onerror="window.__pwned=1">' in t for t in texts)
    for link in page.locator("[data-response-card] a").all():
        assert not (link.get_attribute("href") or "").lower().startswith("javascript")
    if "spans" in kinds:
        texts_json = json.loads(page.locator("#workspace-texts").text_content())
        assert sorted(texts_json.values()) == sorted(hostile[:2])


def test_an_error_from_the_server_keeps_everything_the_annotator_entered(page, login, shot):
    study, annotator = study_with(
        ["pairwise", "spans", "critique"], [("Capital of Italy?", ["Rome, obviously.", "It might be Milan or Rome."])]
    )
    assignment, (first, second) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    keys = page.keyboard
    keys.press("h")
    keys.press("Control+Shift+ArrowRight")  # "Rome"
    keys.press("5")  # unverifiable
    keys.press("Escape")  # leave the text: digits choose again
    keys.press("1")  # A is better; the critique follows B
    keys.press("c")
    keys.type("Hedges on a plain fact.")
    keys.press("Tab")
    keys.press("Control+A")
    keys.type("Rome.")
    # Meanwhile the manager drops the category from the taxonomy: the server refuses the span.
    study_update(study=study, span_taxonomy=[c for c in study.span_taxonomy if c["key"] != "unverifiable"])
    keys.press("Control+Enter")
    page.wait_for_selector(".alert--error")
    assert "Span 1's category 'unverifiable' is not in the study's taxonomy" in page.locator(".alert--error").inner_text()
    assert not Annotation.objects.exists()
    shot(page, "error-keeps-draft")
    # The panel came back with the span, the choice, the critique and the revision as they were.
    spans = page.locator(f'[data-span-list="{first.pk}"] .span-item')
    assert spans.count() == 1 and "no longer a category" in spans.locator("select").inner_text()
    assert page.locator('input[name="choice"][value="a"]').is_checked()
    assert page.locator(f'textarea[name="critique-{second.pk}"]').input_value() == "Hedges on a plain fact."
    assert page.locator(f'textarea[name="revision-{second.pk}"]').input_value() == "Rome."
    keys.press("h")
    keys.press("Tab")  # the span's Delete button
    keys.press("Enter")
    keys.press("Control+Enter")
    page.wait_for_selector("text=All done")
    assert not SpanPart.objects.exists()
    assert PairwiseChoice.objects.get().choice == "a"
    assert CritiquePart.objects.values_list("response_id", "critique", "revision").get() == (
        second.pk,
        "Hedges on a plain fact.",
        "Rome.",
    )


def test_a_ranking_sent_untouched_is_asked_about_once_then_stored_as_shown(page, login):
    study, annotator = study_with(["ranking"], [("Which city is largest?", ["Tokyo.", "Delhi.", "Shanghai."])])
    assignment, (a, b, c) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-flash] [role=alert]")
    assert "Nothing has been moved" in page.locator("[data-flash]").inner_text()
    assert not RankingPart.objects.exists()
    page.keyboard.press("Control+Enter")  # on purpose, this time
    page.wait_for_selector("text=All done")
    assert RankingPart.objects.get().groups == [[a.pk], [b.pk], [c.pk]]


def test_the_skip_form_says_how_to_send_it_and_ctrl_enter_does(page, login):
    study, annotator = study_with(["pairwise"], [("Name a prime.", ["Nine.", "Seven."])])
    open_workspace(page, login, study, annotator)
    page.keyboard.press("s")
    hint = page.locator("#skip-keys")
    assert hint.is_visible() and hint.inner_text() == "Ctrl+Enter to skip, Esc to cancel"
    assert page.locator("textarea[name=reason]").get_attribute("aria-describedby") == "skip-keys"
    page.keyboard.type("I can't judge primes.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=All done")
    assert Assignment.objects.get().skip_reason == "I can't judge primes."


def test_a_swapped_in_panel_is_marked_ready_only_once_htmx_has_bound_its_form(page, login):
    """A key pressed the moment the panel says ready must go through htmx: before htmx has bound
    the new panel's form (it does so when the swap settles), a click submits it natively."""
    study, annotator = study_with(["pairwise"], [("Name a prime.", ["Nine.", "Seven."]), ("Name a colour.", ["Blue.", "Loud."])])
    open_workspace(page, login, study, annotator)
    page.evaluate(
        """() => {
          window.boundWhenReady = [];
          new MutationObserver(() => {
            const p = document.getElementById("workspace-panel");
            if (!p || !p.dataset.ready || p.dataset.checked) return;
            p.dataset.checked = "1";
            const data = p.querySelector("[data-answer-form]")["htmx-internal-data"];
            window.boundWhenReady.push(Boolean(data && data.initHash));
          }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-ready"]});
        }"""
    )
    page.keyboard.press("3")
    page.wait_for_function("() => document.querySelector('.turn__content').textContent.includes('colour')")
    page.wait_for_selector("#workspace-panel[data-ready]")
    assert page.evaluate("window.boundWhenReady") == [True]
