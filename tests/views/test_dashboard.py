"""The manager's study dashboard: counts, annotators, position bias, members, import, training."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotate.models import Membership, Prompt, TrainingRun
from tests.factories import UserFactory, make_answer, make_items, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def dashboard(client, study):
    return client.get(reverse("study-dashboard", args=[study.pk]))


def test_an_annotator_gets_403_on_the_dashboard(as_user, study, annotator):
    assert dashboard(as_user(annotator), study).status_code == 403


def test_a_researcher_sees_the_dashboard_without_its_forms_and_may_not_post_them(as_user, study, researcher, annotator, answer):
    answer(study, annotator)
    client = as_user(researcher)
    reply = dashboard(client, study)
    html = reply.content.decode()
    assert reply.status_code == 200
    assert "1 Labels" in text_of(html) and "read-only" in text_of(html)
    for form in ("study-member-add", "study-import", "study-train", "study-settings"):
        assert reverse(form, args=[study.pk]) not in html, form
    assert client.post(reverse("study-member-add", args=[study.pk]), {"username": "rui", "role": "manager"}).status_code == 403
    assert client.post(reverse("study-train", args=[study.pk])).status_code == 403
    assert Membership.objects.get(user=researcher).role == "researcher"


def test_a_non_member_gets_404_on_the_dashboard(as_user, study, outsider):
    assert dashboard(as_user(outsider), study).status_code == 404


def test_the_dashboard_counts_prompts_queries_and_labels(as_user, manager, annotator, answer):
    study = make_study(manager=manager, annotators=[annotator], overlap=2)
    make_items(study, n_prompts=2, n_responses=3)  # 2 prompts × 3 pairs = 6 queries
    answer(study, annotator)
    text = text_of(dashboard(as_user(manager), study).content.decode())
    assert "2 Prompts" in text
    assert "6 Queries" in text
    assert "1 Labels" in text
    assert "12 Labels wanted" in text


def test_the_dashboard_shows_labels_and_position_bias_per_annotator(as_user, manager, annotator, answer):
    study = make_study(manager=manager, annotators=[annotator], overlap=2)
    make_items(study, n_prompts=3)
    # ana picks the left response twice and the right once; mina picks left once and ties once.
    # Overall 3 of 4 a/b choices went left: 75%. Ties are not a side, so they are left out.
    for shown in ["a", "a", "b"]:
        answer(study, annotator, shown)
    for shown in ["a", "tie"]:
        answer(study, manager, shown)
    text = text_of(dashboard(as_user(manager), study).content.decode())
    assert "Overall: 75% left of 4 choices" in text
    assert "ana 3 67% (2/3)" in text
    assert "mina 2 100% (1/1)" in text


def test_the_dashboard_says_when_no_one_has_labelled(as_user, manager, study):
    text = text_of(dashboard(as_user(manager), study).content.decode())
    assert "No labels yet." in text
    assert "Overall:" not in text


def test_a_manager_adds_a_member_from_the_dashboard(as_user, manager, study):
    newcomer = UserFactory(username="nia")
    client = as_user(manager)
    reply = client.post(reverse("study-member-add", args=[study.pk]), {"username": "nia", "role": "annotator"})
    assert reply.status_code == 302
    assert Membership.objects.get(user=newcomer, study=study).role == "annotator"
    text = text_of(client.get(reply["Location"]).content.decode())
    assert "nia is now annotator in this study." in text
    assert "nia Annotator" in text


def test_adding_an_unknown_user_shows_the_error(as_user, manager, study):
    client = as_user(manager)
    reply = client.post(reverse("study-member-add", args=[study.pk]), {"username": "ghost", "role": "annotator"}, follow=True)
    assert "No user named &#x27;ghost&#x27;." in reply.content.decode()


def test_an_import_shows_its_counts(as_user, manager, study):
    upload = SimpleUploadedFile("more.jsonl", b'{"id": "new1", "prompt": "Hello?", "responses": ["Hi.", "Hey.", "Yo."]}\n')
    reply = as_user(manager).post(reverse("study-import", args=[study.pk]), {"file": upload}, follow=True)
    text = text_of(reply.content.decode())
    assert "Imported more.jsonl: 1 prompt created, 0 prompts unchanged, 3 responses created, 3 queries created." in text
    assert Prompt.objects.filter(study=study, external_id="new1").exists()


def test_a_bad_import_names_the_line_and_field_and_stores_nothing(as_user, manager, study):
    body = b'{"id": "ok", "prompt": "Fine", "responses": ["a", "b"]}\n{"id": "bad", "prompt": "Hm", "responses": ["only one"]}\n'
    reply = as_user(manager).post(
        reverse("study-import", args=[study.pk]), {"file": SimpleUploadedFile("x.jsonl", body)}, follow=True
    )
    text = text_of(reply.content.decode())
    assert "line 2, field responses: this study needs at least 2 responses" in text
    assert not Prompt.objects.filter(study=study, external_id="ok").exists()


def test_an_import_sent_by_htmx_is_answered_with_a_redirect_to_the_dashboard_and_its_result(as_user, manager, study):
    client = as_user(manager)
    upload = SimpleUploadedFile("more.jsonl", b'{"id": "new1", "prompt": "Hello?", "responses": ["Hi.", "Hey."]}\n')
    reply = client.post(reverse("study-import", args=[study.pk]), {"file": upload}, headers={"HX-Request": "true"})
    assert (reply.status_code, reply["HX-Redirect"]) == (204, reverse("study-dashboard", args=[study.pk]))
    assert "Imported more.jsonl: 1 prompt created, 0 prompts unchanged, 2 responses created, 1 query created." in text_of(
        dashboard(client, study).content.decode()
    )


def test_an_import_without_a_file_asks_for_one(as_user, manager, study):
    reply = as_user(manager).post(reverse("study-import", args=[study.pk]), {}, follow=True)
    assert "Choose a JSONL file to import." in reply.content.decode()


def test_the_train_button_starts_a_reward_run_and_opens_its_page(as_user, manager, annotator):
    study = make_study(manager=manager, annotators=[annotator])
    make_items(study, n_prompts=8)
    label_preferring_first_response(study, annotator)
    client = as_user(manager)
    assert 'name="kind" value="reward"' in dashboard(client, study).content.decode()
    reply = client.post(reverse("study-train", args=[study.pk]), {"kind": "reward"})
    run = TrainingRun.objects.get(study=study)
    assert (run.kind, run.created_by) == ("reward", manager)
    assert reply.status_code == 302
    assert reply["Location"] == reverse("run-detail", args=[run.pk])


def test_the_dashboard_links_to_exports_and_recent_runs(as_user, manager, study):
    run = TrainingRun.objects.create(study=study, kind="reward", status="running")
    html = dashboard(as_user(manager), study).content.decode()
    assert f"/api/v1/studies/{study.pk}/export/?format=trl" in html
    assert f"/api/v1/studies/{study.pk}/export/?format=raw" in html
    assert reverse("run-detail", args=[run.pk]) in html
    assert "status--running" in html


def test_each_kind_of_model_shows_whether_it_can_train_and_why_not(as_user, manager, annotator, answer):
    study = make_study(manager=manager, annotators=[annotator])
    make_items(study, n_prompts=4)
    for shown in ["a", "tie", "tie", "b"]:
        answer(study, annotator, shown)
    html = dashboard(as_user(manager), study).content.decode()
    text = text_of(html)
    assert "Reward model Needs 8 usable pairs; has 2 (2 ties left out)" in text
    assert "Span reward model Needs 8 labelled responses; has 0" in text
    assert "Rating model Needs 8 rated responses; has 0" in text
    assert reverse("study-train", args=[study.pk]) not in html  # nothing can train: no button


@pytest.mark.parametrize(
    ("kinds", "says"),
    [
        (["pairwise"], "Each pair of responses to a prompt becomes a query."),
        (["ranking"], "All responses to a prompt (3 to 8) become one query, to be ranked."),
        (["spans", "critique"], "Each response becomes a query of its own."),
    ],
)
def test_the_import_box_says_what_a_prompt_becomes_in_this_study(as_user, manager, kinds, says):
    study = make_study(manager=manager, feedback_kinds=kinds)
    text = text_of(dashboard(as_user(manager), study).content.decode())
    assert says in text
    assert ("Each pair of responses" in text) == (kinds == ["pairwise"])


def test_a_ranking_study_shows_no_position_bias_panel(as_user, manager, annotator):
    study = make_study(manager=manager, annotators=[annotator], feedback_kinds=["ranking"])
    make_items(study, n_prompts=2, n_responses=3)
    text = text_of(dashboard(as_user(manager), study).content.decode())
    assert "Position bias" not in text and "Picked left" not in text
    pairwise = make_study(manager=manager, name="Pairs")
    assert "Position bias" in text_of(dashboard(as_user(manager), pairwise).content.decode())


def test_the_dashboard_shows_agreement_figures_with_the_items_behind_them(as_user, manager, researcher):
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    study = make_study(manager=manager, annotators=[ann, ben], researchers=[researcher])
    make_items(study, n_prompts=2)
    for query, (first, second) in zip(study.queries.order_by("id"), [("a", "a"), ("a", "b")], strict=True):
        make_answer(query, ann, choice=first)
        make_answer(query, ben, choice=second)
    html = dashboard(as_user(researcher), study).content.decode()
    section = text_of(html[html.index('id="agreement"') : html.index("</section>", html.index('id="agreement"'))])
    assert "Pairwise choices 2 annotators" in section
    assert "Raw agreement 0.50 2" in section
    # Every label but one is "a": the chance agreement is high, so κ and α come out at or below zero.
    assert "Fleiss' κ -0.33 2" in section
    assert "Krippendorff's α (nominal)" in section
    assert "ann 0.50 (2 items)" in section


def test_the_dashboard_says_why_an_agreement_figure_is_missing(as_user, manager, annotator):
    study = make_study(manager=manager, annotators=[annotator])
    make_items(study, n_prompts=1)
    make_answer(study.queries.get(), annotator, choice="a")
    text = text_of(dashboard(as_user(manager), study).content.decode())
    assert "Raw agreement – 0 (no item was labelled by two annotators)" in text


def test_a_trl_file_imports_with_its_labels_when_its_format_is_chosen(as_user, manager, study):
    from annotate.models import PairwiseChoice

    body = b'{"id": "t1", "prompt": "Hello?", "chosen": "Hi.", "rejected": "Go away."}\n'
    reply = as_user(manager).post(
        reverse("study-import", args=[study.pk]), {"file": SimpleUploadedFile("prefs.jsonl", body), "format": "trl"}, follow=True
    )
    assert "1 annotation created" in text_of(reply.content.decode())
    assert PairwiseChoice.objects.filter(annotation__query__prompt__external_id="t1").exists()
