"""The workspace's geometry in a real browser: room for the responses, a compact bar on a phone,
a scroll cue on long responses, and refusals shown where the annotator is looking."""

from __future__ import annotations

import pytest

from tests.browser.test_workspace_keyboard import open_workspace, study_with

GUIDELINES = "\n\n".join(f"{i}. Prefer the response that answers the question asked, point {i}." for i in range(1, 25))
LONG = "\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog, again and again." for i in range(1, 40))
OTHER = LONG.replace("Paragraph", "Part")
SHORT = "Seven."


def boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}; })",
    )


def test_with_the_guidelines_open_the_responses_get_most_of_a_1280_by_800_window(page, login, shot):
    study, annotator = study_with(["pairwise"], [("Tell me about foxes.", [LONG, OTHER])], guidelines=GUIDELINES)
    page.set_viewport_size({"width": 1280, "height": 800})
    open_workspace(page, login, study, annotator)
    shot(page, "layout-1280", full_page=False)
    assert page.locator("#guidelines").evaluate("e => e.open")  # a first visit opens them
    (guidelines,) = boxes(page, "#guidelines")
    assert guidelines["top"] < 800 and guidelines["bottom"] > 0  # and they are on screen, beside the work
    (bar,) = boxes(page, ".decision")
    assert bar["bottom"] <= 800 and bar["height"] <= 0.12 * 800
    for body in boxes(page, ".response__body"):
        visible = min(body["bottom"], bar["top"]) - max(body["top"], 0)
        assert visible >= 0.5 * 800, f"only {visible:.0f} px of a response shows above the decision bar"


CUE_OPACITY = "e => Number(getComputedStyle(e, '::after').opacity)"


def test_a_long_response_shows_a_scroll_cue_until_its_end_and_a_short_one_none(page, login):
    study, annotator = study_with(["pairwise"], [("Tell me about foxes.", [LONG, SHORT])])
    page.set_viewport_size({"width": 1280, "height": 800})
    open_workspace(page, login, study, annotator)
    long_body = page.locator(".response__body", has_text="Paragraph 1:")
    short_body = page.locator(".response__body", has_text=SHORT)
    assert "Scroll for more" in long_body.evaluate("e => getComputedStyle(e, '::after').content")
    page.wait_for_function(f"e => ({CUE_OPACITY})(e) > 0.9", arg=long_body.element_handle())
    assert short_body.evaluate(CUE_OPACITY) == 0
    long_body.evaluate("e => { e.scrollTop = e.scrollHeight; }")
    page.wait_for_function(f"e => ({CUE_OPACITY})(e) < 0.05", arg=long_body.element_handle())


@pytest.mark.parametrize("kinds", [["pairwise"], ["pairwise", "critique"]])
def test_on_a_390_px_phone_the_decision_bar_is_compact_and_clips_no_label(page, login, shot, kinds):
    study, annotator = study_with(kinds, [("Tell me about foxes.", [LONG, OTHER])])
    page.set_viewport_size({"width": 390, "height": 844})
    open_workspace(page, login, study, annotator)
    shot(page, f"layout-390-{'-'.join(kinds)}", full_page=False)
    (bar,) = boxes(page, ".decision")
    assert bar["height"] <= 0.2 * 844, f"the decision bar takes {bar['height']:.0f} px of 844"
    clipped = page.eval_on_selector_all(
        ".decision button, .decision label, .decision summary, .decision a",
        "els => els.filter(e => e.checkVisibility()).filter(e => { const r = e.getBoundingClientRect();"
        " return e.scrollWidth > e.clientWidth + 1 || r.left < 0 || r.right > innerWidth; }).map(e => e.textContent.trim())",
    )
    assert clipped == []
    assert page.get_by_text("Much", exact=False).first.is_visible()


def in_view(box: dict, width: int, height: int) -> bool:
    return box["top"] >= 0 and box["left"] >= 0 and box["bottom"] <= height and box["right"] <= width


REFUSALS = [
    (["ranking"], [LONG, "Delhi.", "Shanghai.", "São Paulo."], "Nothing has been moved"),
    (["ratings"], [LONG, OTHER], "Rate Instruction following for response A"),
]


@pytest.mark.parametrize("kinds, responses, said", REFUSALS, ids=["unchanged-ranking", "missing-rating"])
def test_a_refusal_shows_in_view_just_above_the_bar_in_a_live_region(page, login, kinds, responses, said):
    study, annotator = study_with(kinds, [("Tell me about foxes.", responses)], guidelines=GUIDELINES)
    page.set_viewport_size({"width": 1280, "height": 800})
    open_workspace(page, login, study, annotator)
    page.keyboard.press("Control+Enter")
    alert = page.locator("[data-flash] [role=alert]")
    alert.wait_for()
    assert said in alert.inner_text()
    (box,) = boxes(page, "[data-flash] [role=alert]")
    assert in_view(box, 1280, 800), box
    (bar,) = boxes(page, ".decision")
    assert box["bottom"] <= bar["top"] + 1  # just above the bar, not on it
    region = page.locator("[data-flash]")
    assert (region.get_attribute("role"), region.get_attribute("aria-live")) == ("status", "polite")
