"""A manager changes what queries ask, in the browser; a mistake is shown beside its field."""

from __future__ import annotations

from annotate.models import Study
from tests.factories import UserFactory, make_study


def test_a_manager_adds_critiques_and_fixes_a_bad_taxonomy_line(page, login, shot):
    manager = UserFactory(username="mina")
    study = make_study(manager=manager, name="Helpfulness")
    login(page, manager)
    page.goto(f"/studies/{study.pk}/settings/")
    page.get_by_label("Critique and revision").check()
    taxonomy = page.locator('textarea[name="span_taxonomy"]')
    taxonomy.fill(taxonomy.input_value() + "\nBad Key | Oops")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_selector("#span_taxonomy-error")
    assert "Span categories, line 6: the key must be a lowercase slug" in page.locator("#span_taxonomy-error").inner_text()
    assert page.get_by_label("Critique and revision").is_checked()  # the rest of the form is as it was
    shot(page, "settings-error")
    taxonomy.fill(taxonomy.input_value().replace("Bad Key", "bad-key"))
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_selector("text=Settings saved.")
    shot(page, "settings")
    saved = Study.objects.get(pk=study.pk)
    assert saved.feedback_kinds == ["pairwise", "critique"]
    assert saved.span_taxonomy[-1] == {"key": "bad-key", "label": "Oops", "description": ""}


def test_a_manager_pauses_and_resumes_a_study_with_its_buttons(page, login, shot):
    manager = UserFactory(username="mina")
    study = make_study(manager=manager, name="Helpfulness")
    login(page, manager)
    page.goto(f"/studies/{study.pk}/settings/")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("text=Paused: annotators are served no queries until you resume the study.")
    assert Study.objects.get(pk=study.pk).status == "paused"
    shot(page, "settings-paused")
    page.get_by_role("button", name="Resume").click()
    page.wait_for_selector("text=Resumed: annotators are served queries again.")
    assert Study.objects.get(pk=study.pk).status == "active"


def input_boxes(page) -> dict[str, dict]:
    """Each settings row field's input (or select): where it stands, by name."""
    boxes = {}
    for control in page.locator(".settings__row .field input, .settings__row .field select").all():
        boxes[control.get_attribute("name")] = control.bounding_box()
    return boxes


def test_the_inputs_of_a_row_of_settings_line_up_however_their_labels_wrap(page, login, shot):
    manager = UserFactory(username="mina")
    study = make_study(manager=manager, name="Helpfulness")
    login(page, manager)
    page.goto(f"/studies/{study.pk}/settings/")
    for state in ("as shown", "with an error beside one field"):
        boxes = input_boxes(page)
        # Side by side in their row: the gold rate (a short label) and the qualification items (a
        # label that wraps onto three lines), the strategy and the queries per round, the name and the overlap.
        for left, right in (("gold_rate", "qualification_items"), ("selection_strategy", "round_size"), ("name", "overlap")):
            assert boxes[left]["x"] < boxes[right]["x"], (state, left, right)
            assert abs(boxes[left]["y"] - boxes[right]["y"]) < 1, (state, left, right, boxes[left], boxes[right])
        heights = {name: round(box["height"]) for name, box in boxes.items()}
        assert len(set(heights.values())) == 1, (state, heights)  # no input stretched to its row's height
        if state == "as shown":
            page.locator('input[name="qualification_items"]').fill("lots")
            page.get_by_role("button", name="Save settings").click()
            page.wait_for_selector("#qualification_items-error")
    shot(page, "settings-rows")
