"""What the workspace says when an answer cannot be stored: logged out, refused, unreachable."""

from __future__ import annotations

from annotate.models import Annotation
from tests.browser.test_workspace_keyboard import open_workspace, study_with

PROMPTS = [("Name a prime.", ["Nine.", "Seven."]), ("Name a colour.", ["Blue.", "Loud."])]


def test_logged_out_meanwhile_the_answer_leads_to_the_login_and_back_to_the_same_query(page, login):
    study, annotator = study_with(["pairwise"], PROMPTS)
    open_workspace(page, login, study, annotator)
    page.context.clear_cookies(name="sessionid")  # as if the session ended in another tab
    page.keyboard.press("1")
    page.wait_for_url("**/login/?next=*")
    assert "You were logged out, so that last action was not saved." in page.locator(".messages").inner_text()
    assert page.locator("#workspace-panel").count() == 0  # a whole login page, not one inside the panel
    page.fill('input[name="username"]', annotator.username)
    page.fill('input[name="password"]', "pw-for-tests")
    page.keyboard.press("Enter")
    page.wait_for_selector("#workspace-panel[data-ready]")
    assert page.url.endswith(f"/studies/{study.pk}/annotate/")
    assert "Name a prime." in page.locator("#workspace-panel").inner_text()  # still held: the same query
    assert not Annotation.objects.exists()


def test_a_refused_submit_says_so_and_keeps_the_query(page, login):
    study, annotator = study_with(["pairwise"], PROMPTS)
    open_workspace(page, login, study, annotator)
    page.context.clear_cookies(name="csrftoken")  # Django will refuse the post (403)
    page.keyboard.press("1")
    page.wait_for_selector("[data-flash] [role=alert]")
    assert "nothing was saved" in page.locator("[data-flash]").inner_text()
    assert "Name a prime." in page.locator("#workspace-panel").inner_text()
    assert not Annotation.objects.exists()


def test_an_unreachable_server_says_so(page, login):
    study, annotator = study_with(["pairwise"], PROMPTS)
    open_workspace(page, login, study, annotator)
    page.context.set_offline(True)  # the browser's own network refuses: no handler in this process to wait for
    page.keyboard.press("1")
    page.wait_for_selector("[data-flash] [role=alert]")
    assert "could not be reached" in page.locator("[data-flash]").inner_text()
    assert not Annotation.objects.exists()
