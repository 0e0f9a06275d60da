"""A manager imports a file from the dashboard and sees it upload, then wait on the server, then the result."""

from __future__ import annotations

import json
import threading

from annotate.models import Prompt
from annotate.services import items
from tests.factories import UserFactory, make_study


def test_the_import_form_shows_its_progress_then_reloads_with_the_result(page, login, shot, monkeypatch, tmp_path):
    manager = UserFactory(username="mina")
    study = make_study(manager=manager, name="Helpfulness")
    upload = tmp_path / "prompts.jsonl"
    upload.write_text(
        "\n".join(json.dumps({"id": f"p{i}", "prompt": f"Question {i}?", "responses": ["Yes.", "No."]}) for i in range(3))
    )

    # The live server runs in this process: hold the import until the page has shown that it waits.
    release = threading.Event()
    real_import = items.items_import

    def held_import(**kwargs):
        release.wait(timeout=10)
        return real_import(**kwargs)

    monkeypatch.setattr("annotate.services.importers.items_import", held_import)
    login(page, manager)
    page.goto(f"/studies/{study.pk}/")
    assert page.locator("#import-status").is_hidden()
    page.set_input_files('input[name="file"]', str(upload))
    page.get_by_role("button", name="Import").click()
    page.wait_for_selector("text=Checking every line, then storing")
    assert page.get_by_role("button", name="Import").is_disabled()  # no second upload meanwhile
    shot(page, "dashboard-import-waiting", full_page=False)
    release.set()
    page.wait_for_selector("text=Imported prompts.jsonl: 3 prompts created")
    assert page.locator("#import-status").is_hidden()  # a fresh dashboard
    assert Prompt.objects.filter(study=study).count() == 3
