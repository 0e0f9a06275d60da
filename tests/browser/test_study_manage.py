"""Managing studies in the browser: create one, see which models can train, and what researchers see."""

from __future__ import annotations

from annotate.models import Study, TrainingRun
from tests.factories import UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response


def test_a_staff_user_creates_a_study_and_lands_on_its_settings(page, login, shot):
    staff = UserFactory(username="sam", is_staff=True)
    login(page, staff)
    page.goto("/")
    page.get_by_role("link", name="New study").first.click()
    page.get_by_label("Name").fill("Harmlessness")
    page.get_by_role("button", name="Create study").click()
    page.wait_for_selector("text=Study 'Harmlessness' created.")
    assert page.get_by_role("heading", level=1).inner_text() == "Study settings"
    page.get_by_label("One response at a time").check()
    page.get_by_label("Error spans").check()
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_selector("text=Settings saved.")
    shot(page, "new-study-settings")
    study = Study.objects.get(name="Harmlessness")
    assert study.feedback_kinds == ["spans"] and study.memberships.get().user == staff


def test_an_annotator_is_not_offered_a_new_study(page, login):
    login(page, UserFactory(username="ana"))
    page.goto("/")
    page.wait_for_selector("text=Your studies")
    assert page.get_by_role("link", name="New study").count() == 0


def test_the_dashboard_offers_training_only_once_the_trainer_has_enough(page, login, shot):
    manager, annotator = UserFactory(username="mina"), UserFactory(username="ana")
    study = make_study(manager=manager, annotators=[annotator], name="Helpfulness")
    make_items(study, n_prompts=8)
    label_preferring_first_response(study, annotator, limit=3)
    login(page, manager)
    page.goto(f"/studies/{study.pk}/")
    reward = page.locator('[data-run-kind="reward"]')
    assert "Needs 8 usable pairs; has 3" in reward.inner_text()
    assert reward.get_by_role("button", name="Train").count() == 0
    shot(page, "dashboard-train-not-yet")
    label_preferring_first_response(study, annotator)
    page.reload()
    assert "ready: 8 usable pairs" in reward.inner_text()
    reward.get_by_role("button", name="Train").click()
    page.wait_for_url("**/runs/*/")
    assert TrainingRun.objects.get(study=study).kind == "reward"


def test_a_researcher_sees_the_dashboard_read_only(page, login, shot):
    manager, researcher = UserFactory(username="mina"), UserFactory(username="rui")
    study = make_study(manager=manager, researchers=[researcher], name="Helpfulness")
    make_items(study, n_prompts=3)
    login(page, researcher)
    page.goto("/")
    page.get_by_role("link", name="Dashboard").first.click()
    page.wait_for_selector("text=read-only")
    shot(page, "dashboard-researcher")
    for name in ("Import", "Add member", "Train", "Settings"):
        assert page.get_by_role("button", name=name, exact=True).count() == 0, name
    assert page.get_by_role("link", name="Settings", exact=True).count() == 0
    assert page.get_by_role("link", name="Export TRL").count() == 1
