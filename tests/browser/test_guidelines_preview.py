"""The guidelines preview follows what the manager types, sanitised, within the page's CSP."""

from __future__ import annotations

from tests.factories import UserFactory, make_study


def test_typing_guidelines_updates_the_preview_and_never_runs_a_script(page, login, shot, settings):
    manager = UserFactory(username="mina")
    study = make_study(manager=manager, name="Helpfulness", guidelines="Be **kind**.")
    login(page, manager)
    page.goto(f"/studies/{study.pk}/settings/")
    pane = page.locator("#guidelines-preview")
    assert pane.locator("strong").inner_text() == "kind"
    guidelines = page.locator('textarea[name="guidelines"]')
    guidelines.fill("")
    guidelines.press_sequentially("# Rules\n\nPick the *correct* one. <script>window.pwned = 1</script>", delay=5)
    page.wait_for_selector("#guidelines-preview h1")
    page.wait_for_function("document.querySelector('#guidelines-preview em') !== null")
    assert pane.locator("h1").inner_text() == "Rules"
    assert pane.locator("em").inner_text() == "correct"
    page.wait_for_function("document.querySelector('#guidelines-preview').textContent.includes('</script>')")
    assert pane.locator("script").count() == 0
    assert page.evaluate("window.pwned") is None
    shot(page, "guidelines-preview")

    settings.PREFLAB_MAX_TEXT_CHARS = 80
    guidelines.press_sequentially(" and a good deal more", delay=5)
    page.wait_for_selector("#guidelines-preview [role=alert]")
    assert "at most 80" in pane.inner_text()
