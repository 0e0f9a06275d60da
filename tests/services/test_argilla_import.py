"""Argilla v2 records imported with their submitted responses, in the SDK's nested and flat shapes."""

import json

import pytest

from annotate.errors import InvalidInput
from annotate.models import Annotation, CritiquePart, PairwiseChoice, Prompt, Query, RankingPart, RatingPart, SpanPart
from annotate.services.argilla import argilla_import
from annotate.services.items import items_import
from tests.factories import make_study

pytestmark = pytest.mark.django_db

U1, U2 = "8a1b7c2e-0000-4000-8000-000000000001", "8a1b7c2e-0000-4000-8000-000000000002"


def nested(record_id="r1"):
    return {
        "id": record_id,
        "fields": {"prompt": "Explain rain.", "response_1": "Water falls.", "response_2": "Clouds cry.", "response_3": "Sky."},
        "metadata": {"source": "demo"},
        "responses": {
            "ranking": [
                {
                    "value": [
                        {"value": "response_2", "rank": 1},
                        {"value": "response_1", "rank": 2},
                        {"value": "response_3", "rank": 2},
                    ],
                    "user_id": U1,
                    "status": "submitted",
                },
                {"value": [{"value": "response_3", "rank": 1}], "user_id": U2, "status": "draft"},
            ],
            "response_1_truthfulness": [{"value": 5, "user_id": U1, "status": "submitted"}],
            "response_3_critique": [{"value": "Too short.", "user_id": U2, "status": "submitted"}],
            "response_1_spans": [{"value": [{"label": "redundant", "start": 0, "end": 5}], "user_id": U1, "status": "submitted"}],
        },
        "suggestions": {},
        "vectors": {},
        "status": "completed",
    }


def flat():
    return {
        "id": "f1",
        "status": "completed",
        "_server_id": "0f0f",
        "prompt": "2+2?",
        "response_a": "4",
        "response_b": "5",
        "difficulty": "easy",
        "preference.responses": [[{"value": "response_a", "rank": 1}, {"value": "response_b", "rank": 2}]],
        "preference.responses.users": [U1],
        "preference.responses.status": ["submitted"],
        "preference.suggestion": None,
    }


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_nested_records_store_rankings_ratings_critiques_and_spans_per_user():
    study = make_study(feedback_kinds=["ratings"])
    result = argilla_import(study=study, data=json.dumps([nested()]).encode())
    assert (result.prompts_created, result.responses_created) == (1, 3)
    prompt = Prompt.objects.get()
    assert (prompt.external_id, prompt.metadata) == ("r1", {"source": "demo"})
    texts = {r.pk: r.text for r in prompt.responses.all()}
    ranking = RankingPart.objects.get()
    assert ranking.annotation.annotator.username == f"argilla:{U1}"
    assert [sorted(texts[i] for i in group) for group in ranking.groups] == [["Clouds cry."], ["Sky.", "Water falls."]]
    rating = RatingPart.objects.get()
    assert (rating.aspect, rating.value, rating.response.text) == ("truthfulness", 5, "Water falls.")
    span = SpanPart.objects.get()
    assert (span.category, span.start, span.end, span.annotation_id) == ("redundant", 0, 5, ranking.annotation_id)
    critique = CritiquePart.objects.get()
    assert (critique.critique, critique.response.text, critique.annotation.annotator.username) == (
        "Too short.",
        "Sky.",
        f"argilla:{U2}",
    )
    assert critique.annotation.query.kind == "single"  # U2 gave no ranking: a query on the one response
    study.refresh_from_db()
    assert study.feedback_kinds == ["ranking", "spans", "critique", "ratings"]


def test_a_flat_record_ranking_two_responses_is_a_pairwise_choice_and_reimport_adds_nothing():
    study = make_study()
    argilla_import(study=study, data=jsonl(flat()))
    vote = PairwiseChoice.objects.get()
    first, _ = vote.annotation.query.ordered_responses()
    assert (vote.choice, first.text) == ("a", "4")
    assert Prompt.objects.get().metadata == {"difficulty": "easy"}
    again = argilla_import(study=study, data=jsonl(flat()))
    assert again.prompts_unchanged == 1 and again.annotations_created == 0
    assert Query.objects.count() == 1 and Annotation.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["responses"]["response_1_truthfulness"][0].update(value=9), "a rating must be a whole number from 1 to 5"),
        (
            lambda r: r["responses"].update(helpfulness=[{"value": 3, "user_id": U1, "status": "submitted"}]),
            r"field responses.helpfulness\[0\].value: the question's name starts with none of the response fields",
        ),
        (
            lambda r: r["responses"]["response_1_spans"][0]["value"][0].update(end=99),
            r"field responses.response_1_spans\[0\].value\[0\]: start 0 and end 99",
        ),
        (lambda r: r["fields"].pop("prompt"), "field fields.prompt: is missing"),
    ],
)
def test_a_bad_record_stores_nothing_and_names_the_record_and_field(change, message):
    study = make_study()
    bad = nested("bad")
    change(bad)
    with pytest.raises(InvalidInput, match=message) as caught:
        argilla_import(study=study, data=json.dumps([nested(), bad]).encode())
    assert "record 2 (id bad), field " in caught.value.message
    assert not Prompt.objects.exists() and not Annotation.objects.exists()


def test_argilla_records_sent_as_jsonl_items_say_which_format_they_look_like():
    study = make_study()
    with pytest.raises(InvalidInput, match="looks like Argilla records.*format=argilla"):
        items_import(study=study, lines=jsonl(flat()).splitlines())
    with pytest.raises(InvalidInput, match="looks like Argilla records.*format=argilla"):
        items_import(study=study, lines=jsonl(nested()).splitlines())


def test_a_label_answer_naming_a_response_of_two_is_a_pairwise_choice():
    study = make_study()
    record = {
        "id": "p1",
        "fields": {"prompt": "Pick one.", "response_1": "Left text.", "response_2": "Right text."},
        "responses": {"preference": [{"value": "response_2", "user_id": U1, "status": "submitted"}]},
    }
    argilla_import(study=study, data=json.dumps([record]).encode())
    assert PairwiseChoice.objects.get().choice == "b"
    assert not CritiquePart.objects.exists()
