"""Label Studio JSON exports imported with their annotations (sample tasks in the export's documented shape)."""

import json

import pytest
from django.contrib.auth import get_user_model

from annotate.errors import InvalidInput
from annotate.models import Annotation, CritiquePart, PairwiseChoice, Prompt, Query, RankingPart, RatingPart, SpanPart
from annotate.services.fgrlhf import fgrlhf_import
from annotate.services.labelstudio import labelstudio_import
from tests.factories import make_study

pytestmark = pytest.mark.django_db

ANSWER_A = "Paris is the capital. It has a tower."
ANSWER_B = "Lyon."


def result(type_, value, from_name="control", to_name="response_a"):
    return {"id": "r1", "from_name": from_name, "to_name": to_name, "type": type_, "value": value}


def pairwise_task(task_id=1, annotations=None):
    return {
        "id": task_id,
        "data": {"prompt": "Capital of France?", "response_a": ANSWER_A, "response_b": ANSWER_B, "topic": "geo"},
        "annotations": annotations
        if annotations is not None
        else [
            {
                "id": 11,
                "completed_by": 3,
                "was_cancelled": False,
                "result": [
                    result("pairwise", {"selected": "left"}, from_name="pw", to_name="pw"),
                    result("labels", {"start": 22, "end": 36, "text": "It has a tower", "labels": ["Irrelevant"]}),
                    result("textarea", {"text": ["Says more than asked."]}, from_name="critique"),
                    result("textarea", {"text": ["Paris is the capital."]}, from_name="revision"),
                ],
            },
            {"id": 12, "completed_by": {"id": 4, "email": "x@example.org"}, "result": [result("choices", {"choices": ["Tie"]})]},
            {"id": 13, "completed_by": 5, "was_cancelled": True, "result": []},
        ],
        "predictions": [{"result": [result("pairwise", {"selected": "right"}, to_name="pw")]}],
    }


def ranker_task():
    return {
        "id": 2,
        "data": {
            "prompt": [{"role": "user", "content": "Rank these."}],
            "items": [{"id": "x", "body": "first"}, {"id": "y", "body": "second"}, {"id": "z", "body": "third"}],
        },
        "annotations": [
            {
                "id": 21,
                "completed_by": 3,
                "result": [
                    result("ranker", {"ranker": {"rank": ["y", "x", "z"]}}, from_name="rank", to_name="results"),
                    result("rating", {"rating": 4}, from_name="helpfulness", to_name="x"),
                ],
            }
        ],
    }


def export(*tasks) -> bytes:
    return json.dumps(list(tasks)).encode()


def test_pairwise_spans_critiques_and_choices_become_labels_by_each_annotator():
    study = make_study(feedback_kinds=["ratings"])
    result_ = labelstudio_import(study=study, data=export(pairwise_task()))
    assert (result_.prompts_created, result_.responses_created, result_.annotations_created) == (1, 2, 2)
    study.refresh_from_db()
    assert study.feedback_kinds == ["pairwise", "spans", "critique"]
    prompt = Prompt.objects.get()
    assert prompt.external_id == "1" and prompt.metadata == {"topic": "geo"}
    query = Query.objects.get()
    assert (query.kind, query.label_count, query.asks) == ("pairwise", 2, ["pairwise", "spans", "critique"])
    votes = dict(PairwiseChoice.objects.values_list("annotation__annotator__username", "choice"))
    assert votes == {"labelstudio:3": "a", "labelstudio:4": "tie"}
    span = SpanPart.objects.get()
    assert (span.category, span.response.text[span.start : span.end]) == ("irrelevant", "It has a tower")
    critique = CritiquePart.objects.get()
    assert (critique.critique, critique.revision, critique.response.text) == (
        "Says more than asked.",
        "Paris is the capital.",
        ANSWER_A,
    )
    user = get_user_model().objects.get(username="labelstudio:3")
    assert not user.is_active and not user.has_usable_password()


def test_a_ranker_orders_the_list_items_and_a_rating_learns_its_aspect_in_an_empty_study():
    study = make_study(rating_aspects=[{"key": "clarity", "label": "Clarity", "anchors": {}}])
    labelstudio_import(study=study, data=export(ranker_task()))
    ranking = RankingPart.objects.get()
    texts = {r.pk: r.text for r in Prompt.objects.get().responses.all()}
    assert [[texts[i] for i in group] for group in ranking.groups] == [["second"], ["first"], ["third"]]
    rating = RatingPart.objects.get()
    assert (rating.aspect, rating.value, rating.response.text) == ("helpfulness", 4, "first")
    study.refresh_from_db()
    assert "ranking" in study.feedback_kinds and "ratings" in study.feedback_kinds
    assert [a["key"] for a in study.rating_aspects] == ["clarity", "helpfulness"]


def test_importing_the_export_again_adds_nothing_and_a_changed_annotation_is_refused():
    study = make_study()
    labelstudio_import(study=study, data=export(pairwise_task(), ranker_task()))
    again = labelstudio_import(study=study, data=export(pairwise_task(), ranker_task()))
    assert again.prompts_unchanged == 2 and again.annotations_created == again.queries_created == 0
    changed = pairwise_task()
    changed["annotations"][0]["result"][0]["value"]["selected"] = "right"
    with pytest.raises(InvalidInput, match=r"record 1 \(task 1\), field id: '1' was imported before"):
        labelstudio_import(study=study, data=export(changed))
    assert Annotation.objects.count() == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["data"].pop("prompt"), r"record 2 \(task 7\), field data.prompt: is missing"),
        (
            lambda t: t["annotations"][0]["result"].append(result("polygonlabels", {})),
            r"record 2 \(task 7\), field annotations\[0\].result\[4\].type: 'polygonlabels' cannot be imported",
        ),
        (
            lambda t: t["annotations"][0]["result"][1]["value"].update(text="wrong"),
            r"field annotations\[0\].result\[1\].value: the text at 22..36 is 'It has a tower', not 'wrong'",
        ),
        (
            lambda t: t["annotations"][0]["result"][2].update(to_name="prompt"),
            r"field annotations\[0\].result\[2\].to_name: 'prompt' names none of the task's responses",
        ),
    ],
)
def test_a_bad_task_stores_nothing_and_names_the_task_and_field(change, message):
    study = make_study()
    bad = pairwise_task(task_id=7)
    change(bad)
    with pytest.raises(InvalidInput, match=message):
        labelstudio_import(study=study, data=export(ranker_task(), bad))
    assert not Prompt.objects.exists() and not Annotation.objects.exists()


def test_a_span_label_outside_the_taxonomy_of_a_study_with_items_is_refused():
    study = make_study()
    labelstudio_import(study=study, data=export(ranker_task()))
    task = pairwise_task(task_id=9)
    task["annotations"][0]["result"][1]["value"]["labels"] = ["Rude"]
    with pytest.raises(InvalidInput, match=r"'Rude' is not in the study's span taxonomy"):
        labelstudio_import(study=study, data=export(task))


def test_an_export_sent_as_fgrlhf_says_it_looks_like_label_studio():
    study = make_study()
    with pytest.raises(InvalidInput, match="looks like Label Studio JSON export.*format=labelstudio"):
        fgrlhf_import(study=study, data=export(pairwise_task()))
    assert not Prompt.objects.exists()


def test_a_task_without_annotations_becomes_open_queries_under_the_studys_kinds():
    study = make_study()
    labelstudio_import(study=study, data=export({"id": 5, "data": {"prompt": "Q?", "response_a": "x", "response_b": "y"}}))
    query = Query.objects.get()
    assert (query.kind, query.asks, query.label_count) == ("pairwise", ["pairwise"], 0)
    assert not Annotation.objects.exists()
