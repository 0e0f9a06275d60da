"""Gold questions in the browser: the dashboard's accuracy table and marking form, and the workspace's refusal."""

import re

import pytest
from django.urls import reverse

from annotate.models import Query
from annotate.services.gold import query_mark_gold
from annotate.services.studies import study_update

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def mark(client, study, query, answer: str):
    return client.post(reverse("study-gold-mark", args=[study.pk]), {"query": str(query.pk), "answer": answer}, follow=True)


def test_a_manager_marks_a_gold_answer_and_sees_annotators_gold_accuracy(as_user, manager, annotator, study, answer):
    query = Query.objects.filter(study=study).order_by("id").first()
    client = as_user(manager)
    reply = mark(client, study, query, '{"choice": "a"}')
    assert f"Query {query.pk} is now gold." in text_of(reply.content.decode())
    assert Query.objects.get(pk=query.pk).gold_answer == {"choice": "a"}
    study_update(study=study, gold_rate=1.0)
    assignment = answer(study, annotator, shown_choice="a")
    assert assignment.query == query
    text = text_of(client.get(reverse("study-dashboard", args=[study.pk])).content.decode())
    right = 1 if assignment.display_order[0] == 0 else 0
    assert f"{annotator.username} {right} of 1" in text


@pytest.mark.parametrize(
    "answer, says",
    [('{"choice": "left"}', "gold.choice &#x27;left&#x27; is not one of"), ("{choice", "not valid JSON")],
)
def test_a_bad_gold_answer_is_shown_and_marks_nothing(as_user, manager, study, answer, says):
    query = Query.objects.filter(study=study).first()
    reply = mark(as_user(manager), study, query, answer)
    assert says in reply.content.decode()
    assert not Query.objects.filter(study=study, is_gold=True).exists()


def test_a_researcher_may_not_mark_gold(as_user, researcher, study):
    query = Query.objects.filter(study=study).first()
    reply = as_user(researcher).post(
        reverse("study-gold-mark", args=[study.pk]), {"query": query.pk, "answer": '{"choice": "a"}'}
    )
    assert reply.status_code == 403
    assert not Query.objects.get(pk=query.pk).is_gold


def test_an_annotator_who_failed_qualification_is_told_so_in_the_workspace(as_user, annotator, study, answer):
    query = Query.objects.filter(study=study).first()
    query_mark_gold(query=query, answer={"choice": "tie"})
    study_update(study=study, qualification_items=1, qualification_pass=1.0)
    answer(study, annotator, shown_choice="a")  # not a tie: wrong
    page = as_user(annotator).get(reverse("workspace", args=[study.pk]))
    assert page.status_code == 200
    text = text_of(page.content.decode())
    assert "Not qualified for this study" in text and "did not qualify" in text


def settings_post(client, study, **gold):
    from annotate.views.study_settings import aspects_text, taxonomy_text

    data = {
        "name": study.name,
        "overlap": str(study.overlap),
        "structure": "pairwise",
        "span_taxonomy": taxonomy_text(study.span_taxonomy),
        "rating_aspects": aspects_text(study.rating_aspects),
        **gold,
    }
    return client.post(reverse("study-settings", args=[study.pk]), data)


def test_the_settings_page_saves_the_gold_rate_and_qualification(as_user, manager, study):
    client = as_user(manager)
    reply = settings_post(client, study, gold_rate="0.1", qualification_items="5", qualification_pass="0.8")
    assert reply.status_code == 302
    study.refresh_from_db()
    assert (study.gold_rate, study.qualification_items, study.qualification_pass) == (0.1, 5, 0.8)
    assert 'name="gold_rate" value="0.1"' in client.get(reverse("study-settings", args=[study.pk])).content.decode()


@pytest.mark.parametrize(
    "gold, field, says",
    [
        ({"gold_rate": "2"}, "gold_rate", "Gold rate must be a number from 0 to 1"),
        ({"qualification_pass": "lots"}, "qualification_pass", "Pass mark must be a number"),
        ({"qualification_items": "-3"}, "qualification_items", "Qualification items"),
    ],
)
def test_bad_gold_settings_are_named_beside_their_field_and_nothing_is_saved(as_user, manager, study, gold, field, says):
    reply = settings_post(as_user(manager), study, **gold)
    html = reply.content.decode()
    assert reply.status_code == 400 and f'id="{field}-error"' in html and says in html
    study.refresh_from_db()
    assert (study.gold_rate, study.qualification_items) == (0.0, 0)


def test_the_dashboard_warns_when_qualification_needs_more_gold_than_there_is(as_user, manager, study):
    study_update(study=study, qualification_items=2)
    client = as_user(manager)
    text = text_of(client.get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "Qualification asks for 2 gold answers, but the study has 0 gold queries" in text
    for query in Query.objects.filter(study=study)[:2]:
        query_mark_gold(query=query, answer={"choice": "a"})
    assert "data-gold-short" not in client.get(reverse("study-dashboard", args=[study.pk])).content.decode()
