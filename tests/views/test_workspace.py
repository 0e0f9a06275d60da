"""The annotator's workspace: what it shows, and what its forms store."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from annotate.models import Annotation, Assignment, PairwiseChoice
from annotate.models.assignments import AssignmentStatus
from annotate.services.assignments import assignment_next
from annotate.services.items import items_import
from tests.factories import jsonl, make_study

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def text_of(html: str) -> str:
    """The page's visible words, tags dropped and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def submit_url(study, assignment) -> str:
    return reverse("workspace-submit", kwargs={"study_id": study.pk, "query_id": assignment.query_id})


def skip_url(study, assignment) -> str:
    return reverse("workspace-skip", kwargs={"study_id": study.pk, "query_id": assignment.query_id})


def held(study, user) -> Assignment:
    """The user's current assignment, claimed as the page would claim it."""
    return assignment_next(study=study, annotator=user)


def test_a_non_member_gets_404_for_a_workspace(as_user, study, outsider):
    assert as_user(outsider).get(reverse("workspace", args=[study.pk])).status_code == 404


def test_a_logged_out_htmx_submit_sends_the_whole_page_to_the_login_and_back(client, study, annotator):
    assignment = assignment_next(study=study, annotator=annotator)
    workspace = reverse("workspace", args=[study.pk])
    reply = client.post(
        submit_url(study, assignment),
        {"choice": "a"},
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{workspace}"},
    )
    # Not a 302, which htmx would follow itself and swap the login page into the panel.
    assert (reply.status_code, reply["HX-Redirect"]) == (204, f"/login/?next={workspace.replace('/', '%2F')}")
    assert "You were logged out, so that last action was not saved." in text_of(client.get(reply["HX-Redirect"]).content.decode())
    assert not Annotation.objects.exists()
    assert client.post(submit_url(study, assignment), {"choice": "a"}).status_code == 302  # a plain post: a plain redirect


def test_a_missing_study_is_404_too(as_user, outsider):
    assert as_user(outsider).get(reverse("workspace", args=[987654])).status_code == 404


def test_a_researcher_gets_403_for_a_workspace(as_user, study, researcher):
    assert as_user(researcher).get(reverse("workspace", args=[study.pk])).status_code == 403


def test_the_workspace_shows_the_prompt_turns_with_their_roles(as_user, manager, annotator):
    study = make_study(manager=manager, annotators=[annotator])
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime."}]
    items_import(study=study, lines=jsonl([{"id": "x", "prompt": prompt, "responses": ["Two.", "Nine."]}]))
    text = text_of(as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode())
    assert "System Be brief." in text
    assert "User Name a prime." in text


def test_the_workspace_shows_both_responses_as_escaped_text(as_user, manager, annotator):
    study = make_study(manager=manager, annotators=[annotator])
    hostile = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
    items_import(study=study, lines=jsonl([{"id": "x", "prompt": "Say <b>hi</b>", "responses": hostile}]))
    html = as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Say &lt;b&gt;hi&lt;/b&gt;" in html
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "<b>hi</b>" not in html


def test_the_responses_appear_left_to_right_in_the_assignments_display_order(as_user, study, annotator):
    assignment = held(study, annotator)
    assignment.display_order = [1, 0]
    assignment.save()
    first, second = assignment.query.ordered_responses()
    html = as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode()
    assert html.index("Response A") < html.index(second.text) < html.index("Response B") < html.index(first.text)


def test_the_form_carries_one_client_key_per_assignment(as_user, study, annotator):
    assignment = held(study, annotator)
    html = as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode()
    assert f'name="client_key" value="web-{assignment.pk}"' in html
    assert f'hx-post="{submit_url(study, assignment)}"' in html
    assert f'action="{submit_url(study, assignment)}"' in html


def test_an_htmx_submit_stores_the_choice_in_canonical_order_and_returns_the_next_panel(as_user, study, annotator):
    assignment = held(study, annotator)
    assignment.display_order = [1, 0]
    assignment.save()
    reply = as_user(annotator).post(
        submit_url(study, assignment), {"choice": "a", "strength": "3", "client_key": f"web-{assignment.pk}"}, **HTMX
    )
    assert reply.status_code == 200
    vote = PairwiseChoice.objects.get()
    assert (vote.shown_choice, vote.choice, vote.strength) == ("a", "b", 3)
    html = reply.content.decode()
    assert html.lstrip().startswith('<section id="workspace-panel"')
    assert "<html" not in html and "site-header" not in html
    following = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert following.query_id != assignment.query_id
    assert submit_url(study, following) in html
    assert f'value="web-{following.pk}"' in html
    assert "Saved." in html


def test_a_double_submit_stores_one_annotation(as_user, study, annotator):
    assignment = held(study, annotator)
    client = as_user(annotator)
    body = {"choice": "b", "strength": "2", "client_key": f"web-{assignment.pk}"}
    first = client.post(submit_url(study, assignment), body, **HTMX)
    second = client.post(submit_url(study, assignment), body, **HTMX)
    assert first.status_code == second.status_code == 200
    assert Annotation.objects.filter(annotator=annotator).count() == 1
    assert 'class="alert' not in second.content.decode()
    assert "Saved. Here is the next query." in first.content.decode()


def test_a_second_tab_answering_the_same_query_is_told_its_answer_was_not_saved(as_user, study, annotator):
    assignment = held(study, annotator)
    client = as_user(annotator)
    key = f"web-{assignment.pk}"  # both tabs show the same assignment, so their forms carry the same key
    client.post(submit_url(study, assignment), {"choice": "a", "client_key": key}, **HTMX)
    stale = client.post(submit_url(study, assignment), {"choice": "b", "client_key": key}, **HTMX)
    assert "You had already answered that query, perhaps in another tab; your first answer stands" in text_of(
        stale.content.decode()
    )
    assert PairwiseChoice.objects.get(annotation__annotator=annotator).shown_choice == "a"


def test_a_plain_form_submit_redirects_back_to_the_workspace(as_user, study, annotator):
    assignment = held(study, annotator)
    client = as_user(annotator)
    reply = client.post(submit_url(study, assignment), {"choice": "tie", "client_key": f"web-{assignment.pk}"})
    assert reply.status_code == 302
    assert reply["Location"] == reverse("workspace", args=[study.pk])
    vote = PairwiseChoice.objects.get()
    assert (vote.choice, vote.strength) == ("tie", None)  # a tie has no strength
    assert "Saved." in client.get(reply["Location"]).content.decode()


def test_a_service_error_shows_inline_and_keeps_the_query(as_user, study, annotator):
    assignment = held(study, annotator)
    reply = as_user(annotator).post(
        submit_url(study, assignment), {"choice": "a", "strength": "9", "client_key": f"web-{assignment.pk}"}, **HTMX
    )
    assert reply.status_code == 200
    html = reply.content.decode()
    assert 'class="alert alert--error"' in html
    assert "strength must be 1, 2 or 3" in html
    assert submit_url(study, assignment) in html
    assert not Annotation.objects.exists()


def test_a_submit_for_a_query_never_assigned_is_404(as_user, study, annotator, manager):
    other = held(study, manager)
    reply = as_user(annotator).post(submit_url(study, other), {"choice": "a", "client_key": "web-x"}, **HTMX)
    assert reply.status_code == 404
    assert not Annotation.objects.exists()


def test_a_skip_needs_a_reason(as_user, study, annotator):
    assignment = held(study, annotator)
    reply = as_user(annotator).post(skip_url(study, assignment), {"reason": "   "}, **HTMX)
    assert reply.status_code == 200
    assert "Say why you skip this query." in reply.content.decode()
    assignment.refresh_from_db()
    assert assignment.status == AssignmentStatus.ACTIVE


def test_a_skip_with_a_reason_moves_on_to_the_next_query(as_user, study, annotator):
    assignment = held(study, annotator)
    reply = as_user(annotator).post(skip_url(study, assignment), {"reason": "I can't judge arithmetic"}, **HTMX)
    assignment.refresh_from_db()
    assert (assignment.status, assignment.skip_reason) == (AssignmentStatus.SKIPPED, "I can't judge arithmetic")
    following = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert submit_url(study, following) in reply.content.decode()
    text = text_of(reply.content.decode())
    assert "0 / 2 done · 1 skipped Choice" in text and "Skipped. Here is the next query." in text


def test_skipping_the_last_query_says_skipped_and_all_done_without_promising_a_next(as_user, study, annotator):
    client = as_user(annotator)
    for _ in range(3):
        reply = client.post(skip_url(study, held(study, annotator)), {"reason": "Not my field"}, **HTMX)
    text = text_of(reply.content.decode())
    assert "0 / 0 done · 3 skipped Skipped. All done You have answered or skipped every query" in text
    assert "Here is the next query" not in text


def test_progress_shows_done_over_total(as_user, study, annotator, answer):
    answer(study, annotator)
    text = text_of(as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode())
    assert "1 / 3 done" in text


def test_the_last_answer_brings_the_all_done_screen(as_user, study, annotator, answer):
    answer(study, annotator)
    answer(study, annotator)
    assignment = held(study, annotator)
    reply = as_user(annotator).post(
        submit_url(study, assignment), {"choice": "both_bad", "client_key": f"web-{assignment.pk}"}, **HTMX
    )
    text = text_of(reply.content.decode())
    assert "All done" in text
    assert "3 / 3 done" in text


def test_guidelines_are_markdown_with_raw_html_shown_as_text_and_their_line_breaks_kept(as_user, manager, annotator):
    guidelines = "Prefer <b>honest</b> answers.\nThen **brevity**."
    study = make_study(manager=manager, annotators=[annotator], guidelines=guidelines)
    html = as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode()
    assert "<p>Prefer &lt;b&gt;honest&lt;/b&gt; answers.<br>\nThen <strong>brevity</strong>.</p>" in html
    assert 'id="guidelines"' in html
    assert "<kbd>g</kbd>" in html


def test_the_page_loads_htmx_and_its_shortcuts_from_our_own_static_files(as_user, study, annotator):
    html = as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode()
    sources = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert sources == ["/static/vendor/htmx.min.js", "/static/js/workspace.js", "/static/js/ranking.js", "/static/js/spans.js"]
    for path in ("vendor/htmx.min.js", "js/workspace.js", "js/ranking.js", "js/spans.js", "css/preflab.css"):
        assert finders.find(path), path
    for key in ("1", "2", "3", "4", "q", "w", "e", "s"):
        assert f"<kbd>{key}</kbd>" in html


def test_without_debug_a_non_member_sees_the_plain_not_found_page(as_user, study, outsider, settings):
    settings.DEBUG = False
    reply = as_user(outsider).get(reverse("workspace", args=[study.pk]))
    assert reply.status_code == 404
    assert "not shared with you" in reply.content.decode()
    assert "Helpfulness" not in reply.content.decode()


def test_without_debug_a_researcher_is_told_their_role_does_not_allow_annotating(as_user, study, researcher, settings):
    settings.DEBUG = False
    reply = as_user(researcher).get(reverse("workspace", args=[study.pk]))
    assert reply.status_code == 403
    assert "Your role in this study (researcher) does not allow you to annotate." in reply.content.decode()


def test_a_paused_study_tells_its_annotators_so_and_still_takes_the_answer_they_were_giving(as_user, study, annotator):
    from annotate.services.study_status import study_status_change

    client = as_user(annotator)
    assignment = held(study, annotator)
    study_status_change(study=study, action="pause")
    html = client.get(reverse("workspace", args=[study.pk])).content.decode()
    assert 'data-stopped="paused"' in html
    assert "This study is paused by its manager: no queries are served until it is resumed." in text_of(html)
    assert "All done" not in html and submit_url(study, assignment) not in html
    reply = client.post(submit_url(study, assignment), {"client_key": f"web-{assignment.pk}", "choice": "a"}, **HTMX)
    assert Annotation.objects.filter(annotator=annotator).count() == 1
    assert "Saved." in text_of(reply.content.decode()) and "This study is paused" in text_of(reply.content.decode())


def test_an_archived_study_tells_its_annotators_so_and_refuses_an_answer(as_user, study, annotator):
    from annotate.services.study_status import study_status_change

    client = as_user(annotator)
    assignment = held(study, annotator)
    study_status_change(study=study, action="archive")
    text = text_of(client.get(reverse("workspace", args=[study.pk])).content.decode())
    assert "This study is archived This study is archived: it is read-only, and no queries are served." in text
    reply = client.post(submit_url(study, assignment), {"client_key": f"web-{assignment.pk}", "choice": "a"}, **HTMX)
    assert "archived: it is read-only, so answering a query is refused" in text_of(reply.content.decode())
    assert not Annotation.objects.exists()


def test_an_annotator_who_reached_the_quota_is_told_so_not_all_done(as_user, study, annotator, answer):
    study.annotator_quota = 2
    study.save(update_fields=["annotator_quota"])
    for _ in range(2):
        answer(study, annotator)
    text = text_of(as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode())
    assert "You reached your quota You reached this study&#x27;s quota of 2 answered queries; thank you." in text
    assert "2 / 2 done" in text and "All done" not in text
    assert "Change last answer" in text  # their answers may still be changed
