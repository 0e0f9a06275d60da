"""The same workspace with the mouse: drag and drop to rank, select text to label it."""

from __future__ import annotations

from annotate.models import RankingPart, SpanPart
from tests.browser.test_workspace_keyboard import claim_in_order, open_workspace, study_with

LONG = (
    """Here is a **careful** answer.

1. First, note the premise.
2. Then check it against a source:

```python
def area(r):
    return 3.14159 * r * r
```

| step | cost |
|------|------|
| read | low  |
| test | high |

"""
    + "A long paragraph that keeps going so that the card has to scroll inside itself. " * 12
)


def test_dragging_ranks_and_ties_responses(page, login, shot):
    responses = [f"Answer {letter}. " + LONG for letter in "ABCDE"]
    study, annotator = study_with(["ranking"], [("Explain circles, with code.", responses)])
    assignment, (a, b, c, d, e) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    item = lambda r: page.locator(f'[data-rank-item="{r.pk}"]')  # noqa: E731
    item(c).drag_to(item(a))  # onto the middle of A: a tie
    item(e).drag_to(page.locator(".rank-group").first, target_position={"x": 60, "y": 2})  # above the first rank
    assert page.locator(".rank-group--tie [data-rank-item]").count() == 2
    shot(page, "ranking-drag", full_page=False)
    page.locator("[data-submit]").click()
    page.wait_for_function("() => !document.querySelector('[data-rank-board]')")
    assert RankingPart.objects.get().groups == [[e.pk], [a.pk, c.pk], [b.pk], [d.pk]]


def test_a_mouse_selection_opens_the_label_popover(page, login, shot):
    study, annotator = study_with(["pairwise", "spans"], [("Is the sky green?", ["Yes, it is green at noon.", "No: blue."])])
    assignment, (first, second) = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    # Double-click the word "green": the browser selects it, and releasing the button opens the popover.
    box = page.evaluate(
        """([id, word]) => {
            const el = document.querySelector(`[data-span-text="${id}"]`);
            const node = el.firstChild, at = node.textContent.indexOf(word), range = document.createRange();
            range.setStart(node, at); range.setEnd(node, at + word.length);
            const r = range.getBoundingClientRect();
            return {x: r.x + r.width / 2, y: r.y + r.height / 2};
        }""",
        [first.pk, "green"],
    )
    page.mouse.dblclick(box["x"], box["y"])
    page.wait_for_selector("[data-span-popover]:not([hidden])")
    shot(page, "spans-popover", full_page=False)
    page.locator("[data-category=wrong-grounding]").click()
    page.locator("[data-popover-note]").fill("The sky is blue.")
    page.locator("[data-popover-save]").click()
    page.locator('input[name="choice"][value="b"]').check(force=True)
    page.locator("[data-submit]").click()
    page.wait_for_selector("text=All done")
    span = SpanPart.objects.get()
    assert (first.text[span.start : span.end], span.category, span.note) == ("green", "wrong-grounding", "The sky is blue.")
