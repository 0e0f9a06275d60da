"""Every page carries the Content-Security-Policy and breaks none of it, in a real Chromium.

Chromium reports each refused inline script, style element or style attribute on the console as
it refuses it; the `page` fixture listens (and fails any browser test that breaks the policy).
"""

from __future__ import annotations

import pytest

from annotate.models import TrainingRun
from tests.browser.test_workspace_keyboard import claim_in_order, open_workspace, study_with, wait_for_next
from tests.factories import UserFactory

ASPECTS = [{"key": "clarity", "label": "Clarity"}, {"key": "tone", "label": "Tone"}]


def settled(page) -> list[str]:
    """The violations so far, once the page has loaded and its console messages have all come in."""
    page.wait_for_load_state("load")
    page.evaluate("1")  # a round trip: console messages sent before it have arrived
    return page.csp_violations


def assert_policy(response) -> None:
    policy = response.headers.get("content-security-policy", "")
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy, f"{response.url} has the policy {policy!r}, without {directive}"


def visit(page, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response.status == status, f"{url} answered {response.status}"
    assert_policy(response)
    assert settled(page) == [], f"{url} breaks the Content-Security-Policy"


def test_the_check_sees_an_inline_script_a_style_element_and_a_style_attribute(page, live_server):
    """The listener, against the site's own policy: without it the tests below could not fail."""
    policy = page.request.get(f"{live_server.url}/login/").headers["content-security-policy"]
    hostile = "<p style='color: red'>x</p><style>p { color: red }</style><script>document.title = 'ran'</script>"
    page.route(
        "**/probe/",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/html", "Content-Security-Policy": policy}, body=hostile
        ),
    )
    page.goto(f"{live_server.url}/probe/")
    complaints = settled(page)
    assert page.title() != "ran"
    assert any("inline script" in c for c in complaints), complaints
    assert sum("inline style" in c for c in complaints) == 2, complaints
    complaints.clear()  # seen, and meant: the fixture's own check is for the site's pages


def log_in_with_a_wrong_password(page, *, status: int, says: str) -> None:
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", "wrong")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button[type=submit]")
    assert posted.value.status == status
    assert_policy(posted.value)
    assert says in page.text_content("main")
    assert settled(page) == []


def test_the_login_lockout_csrf_and_error_pages_keep_the_policy(page, settings):
    settings.AXES_FAILURE_LIMIT = 1
    visit(page, "/no/such/page/", status=404)
    visit(page, "/logout/", status=405)
    visit(page, "/login/")
    log_in_with_a_wrong_password(page, status=429, says="Too many failed logins")
    # A form sent without its CSRF cookie gets the site's page, not Django's, which has a <style>.
    page.goto("/login/")
    page.context.clear_cookies()
    log_in_with_a_wrong_password(page, status=403, says="could not be sent")


def test_a_managers_pages_and_a_run_polling_its_progress_keep_the_policy(page, login):
    study, annotator = study_with(["pairwise", "spans"], [("Name a prime.", ["Nine.", "Seven."])])
    manager = study.memberships.get(role="manager").user
    finished = TrainingRun.objects.create(study=study, kind="reward", status="failed", progress=0.5, created_by=manager)
    running = TrainingRun.objects.create(study=study, kind="reward", status="running", progress=0.4, created_by=manager)
    login(page, manager)
    for url in ("/", f"/studies/{study.pk}/", f"/studies/{study.pk}/settings/", f"/studies/{study.pk}/runs/"):
        visit(page, url)
    visit(page, f"/runs/{finished.pk}/")
    with page.expect_response(lambda r: f"/runs/{running.pk}/progress/" in r.url):
        visit(page, f"/runs/{running.pk}/")
    assert settled(page) == []

    # The API answers a browser in JSON: DRF's browsable pages carry inline styles.
    response = page.goto(f"/api/v1/studies/{study.pk}/")
    assert response.headers["content-type"].startswith("application/json")
    login(page, annotator)
    visit(page, f"/studies/{study.pk}/", status=403)


def test_the_admin_keeps_the_policy(page, login):
    study, _ = study_with(["pairwise"], [("Name a prime.", ["Nine.", "Seven."])])
    login(page, UserFactory(username="root", is_staff=True, is_superuser=True))
    for url in ("/admin/", "/admin/annotate/study/", f"/admin/annotate/study/{study.pk}/change/", "/admin/annotate/trainingrun/"):
        visit(page, url)


@pytest.mark.parametrize(
    "kinds",
    [["pairwise"], ["ranking"], ["spans"], ["critique"], ["ratings"], ["pairwise", "spans", "critique", "ratings"]],
)
def test_the_workspace_for_each_kind_of_feedback_keeps_the_policy(page, login, kinds):
    responses = ["Nine.", "Seven.", "Eleven."] if kinds == ["ranking"] else ["Nine.", "Seven."]
    prompts = [("Name a prime.", responses), ("Name an even prime.", responses)]
    study, annotator = study_with(kinds, prompts, rating_aspects=ASPECTS)
    assignment, _ = claim_in_order(study, annotator)
    open_workspace(page, login, study, annotator)
    assert settled(page) == []
    # The span popover's colours are set by script, not by style attributes.
    if "spans" in kinds:
        page.keyboard.press("h")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Enter")
        page.wait_for_selector("[data-span-popover]:not([hidden])")
        colour = page.eval_on_selector("[data-span-popover] .cat", "b => getComputedStyle(b).getPropertyValue('--c')")
        assert colour.strip().startswith("#")
        assert settled(page) == []
    # A skip swaps the next query in through htmx.
    page.keyboard.press("Escape")
    page.click("[data-skip] summary")
    page.fill("[data-skip] textarea", "Cannot judge primes.")
    page.click("text=Skip query")
    wait_for_next(page, assignment)
    assert settled(page) == []


def test_the_round_loop_dashboard_with_its_plot_and_the_workspace_between_rounds_keep_the_policy(page, login):
    from annotate.models import Round

    study, annotator = study_with(["pairwise"], [("Name a prime.", ["Nine.", "Seven."])])
    manager = study.memberships.get(role="manager").user
    for number, labels, accuracy in ((1, 10, 0.6), (2, 20, 0.7)):
        Round.objects.create(
            study=study, number=number, strategy="random", chosen_by="random", size=10, selected=10, status="done",
            labels=labels, heldout_accuracy=accuracy, heldout_accuracy_low=accuracy - 0.1, heldout_accuracy_high=accuracy + 0.1,
        )  # fmt: skip
    Round.objects.create(study=study, number=3, strategy="random", size=10)  # being selected
    study.loop_status, study.current_round = "running", 3
    study.save(update_fields=["loop_status", "current_round"])
    login(page, manager)
    visit(page, f"/studies/{study.pk}/")
    assert page.locator("svg.plot circle.plot__point").count() == 2
    login(page, annotator)
    visit(page, f"/studies/{study.pk}/annotate/")
    assert page.get_by_text("The next round is being prepared").is_visible()
