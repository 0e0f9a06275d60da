"""FineGrainedRLHF qa_feedback files: imported as labels, exported back record for record."""

import copy
import json

import pytest
from django.contrib.auth import get_user_model

from annotate.errors import InvalidInput
from annotate.models import Annotation, CritiquePart, PairwiseChoice, Prompt, Query, SpanPart
from annotate.selectors.studies import position_bias
from annotate.services.assignments import assignment_next
from annotate.services.exports import export_build
from annotate.services.feedback import annotation_submit
from annotate.services.fgrlhf import fgrlhf_import
from tests.factories import UserFactory, make_study
from tests.qa_feedback import FIRST, INTRO_END, TEA, qa_file, qa_record

pytestmark = pytest.mark.django_db


def exported(study) -> list[dict]:
    export = export_build(study=study, format="fgrlhf")
    rows = list(export.rows)
    assert export.counts["rows"] == len(rows)
    return json.loads(json.dumps(rows))  # as a reader of the JSON lines sees them


def test_a_record_is_stored_as_prompt_responses_and_imported_labels():
    study = make_study(feedback_kinds=["ratings"])
    result = fgrlhf_import(study=study, data=qa_file(qa_record()))
    assert result.as_dict() == {
        "records": 1,
        "prompts_created": 1,
        "prompts_unchanged": 0,
        "responses_created": 4,
        "queries_created": 7,
        "annotations_created": 7,
        "study_configured": True,
    }
    study.refresh_from_db()
    assert study.feedback_kinds == ["pairwise", "spans", "critique"]
    prompt = Prompt.objects.get()
    assert prompt.messages == [{"role": "user", "content": "When did Café 東京 open?"}]
    assert prompt.metadata == {"passages": [["Café 東京", "Café 東京 opened in 1999."]], "gold": "It opened in 1999."}
    assert [r.text for r in prompt.responses.order_by("index")][0] == FIRST

    imported = get_user_model().objects.get(username="imported")
    assert not imported.has_usable_password()
    assert set(Annotation.objects.values_list("annotator", flat=True)) == {imported.pk}
    assert set(Query.objects.values_list("label_count", flat=True)) == {1}
    choices = [vote.choice for vote in PairwiseChoice.objects.order_by("annotation_id")]
    assert choices == ["a", "a", "a", "b", "tie", "a"]

    judged = Query.objects.get(kind="single")
    assert judged.asks == ["spans", "critique"]
    first = judged.ordered_responses()[0]
    assert first.text == FIRST
    spans = list(SpanPart.objects.order_by("id"))
    assert [(s.category, s.start, s.end, s.note) for s in spans] == [
        ("redundant", *TEA, ""),
        ("irrelevant", 0, INTRO_END, "not asked"),
        ("missing-information", None, None, ""),
    ]
    assert FIRST[spans[0].start : spans[0].end] == "It sells tea."
    assert spans[2].metadata == {"error type": "Missing-Answer", "passage_id": 1, "sentence_id": [1]}
    assert CritiquePart.objects.get().revision == "Café 東京 opened in 1999."


def test_export_gives_the_imported_records_back_exactly():
    records = [
        qa_record(),
        qa_record(
            question="Second?",
            preference=[0, 0, 0, 2, 2, 2],
            feedback={"errors": [], "missing-info": [], "corrected-prediction": ""},
        ),
    ]
    study = make_study()
    fgrlhf_import(study=study, data=qa_file(*records))
    assert exported(study) == records


def test_a_nul_character_in_a_record_is_refused_naming_the_record_and_field():
    study = make_study()
    record = qa_record()
    record["question"] = record["question"] + "\u0000"
    with pytest.raises(InvalidInput, match=r"field question contains a NUL character") as caught:
        fgrlhf_import(study=study, data=qa_file(qa_record(), record))
    assert caught.value.field == "question"
    assert not Prompt.objects.exists()


def test_a_study_that_has_other_items_and_kinds_is_refused():
    from tests.factories import make_items

    study = make_study(feedback_kinds=["ranking"])
    make_items(study, n_prompts=1, n_responses=3)
    with pytest.raises(InvalidInput, match="need pairwise, spans and critique") as caught:
        fgrlhf_import(study=study, data=qa_file(qa_record()))
    assert caught.value.field == "feedback_kinds"
    assert Prompt.objects.count() == 1


def test_reimporting_the_same_file_stores_nothing_new_and_a_changed_record_is_refused():
    study = make_study()
    fgrlhf_import(study=study, data=qa_file(qa_record()))
    again = fgrlhf_import(study=study, data=qa_file(qa_record()))
    assert (again.prompts_created, again.prompts_unchanged, again.annotations_created) == (0, 1, 0)
    assert Annotation.objects.count() == 7

    changed = qa_record(preference=[2, 1, 1, 2, 0, 1])
    with pytest.raises(InvalidInput, match=r"record 2 \(array index 1\), field preference") as caught:
        fgrlhf_import(study=study, data=qa_file(qa_record(question="New one?"), changed))
    assert caught.value.field == "preference"
    assert Prompt.objects.count() == 1 and Annotation.objects.count() == 7


def broken(path: str, value):
    """A record with one field replaced (path like feedback.errors.0.end) or, with value ..., removed."""
    bad = copy.deepcopy(qa_record())
    *parents, last = path.split(".")
    target = bad
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return bad


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("question", "", "question"),
        ("prediction 3", ..., "prediction 1"),
        ("prediction 2", 7, "prediction 2"),
        ("preference", [1, 1, 1], "preference"),
        ("preference.4", 3, "preference[4]"),
        ("preference.0", True, "preference[0]"),
        ("feedback.corrected-prediction", ..., "feedback.corrected-prediction"),
        ("feedback.errors.0.end", len(FIRST) + 1, "feedback.errors[0].end"),
        ("feedback.errors.1.start", "0", "feedback.errors[1].end"),
        ("feedback.errors.1.error type", "Rude", "feedback.errors[1].error type"),
        ("feedback.errors.0.explanation", ..., "feedback.errors[0].explanation"),
        ("feedback.missing-info.0", "Missing-Answer", "feedback.missing-info[0].error type"),
        ("feedback.notes", "extra", "feedback.notes"),
    ],
)
def test_a_malformed_record_names_its_number_and_field_and_stores_nothing(path, value, field):
    study = make_study()
    with pytest.raises(InvalidInput) as caught:
        fgrlhf_import(study=study, data=qa_file(qa_record(), qa_record(question="Two?"), broken(path, value)))
    assert f"record 3 (array index 2), field {field}:" in caught.value.message
    assert caught.value.field == field
    assert not Prompt.objects.exists() and not Annotation.objects.exists()
    assert not get_user_model().objects.filter(username="imported").exists()
    study.refresh_from_db()
    assert study.feedback_kinds == ["pairwise"]  # the configuration rolled back too


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"[{]", "not valid JSON"),
        (b'{"question": "x"}', "JSON array of records, not a dict"),
        (b"[]", "no records"),
        (qa_file(qa_record(), qa_record()), "record 2 (array index 1): the same question and predictions as record 1"),
    ],
)
def test_a_file_that_is_no_array_of_records_is_refused(body, complaint):
    with pytest.raises(InvalidInput, match="Nothing was imported") as caught:
        fgrlhf_import(study=make_study(), data=body)
    assert complaint in caught.value.message
    assert not Prompt.objects.exists()


def test_a_user_named_imported_who_can_log_in_is_not_taken_over():
    UserFactory(username="imported")
    with pytest.raises(InvalidInput, match="exists and can log in"):
        fgrlhf_import(study=make_study(), data=qa_file(qa_record()))
    assert not Prompt.objects.exists()


def test_native_labels_export_in_the_same_shape():
    """An annotator's own pairwise votes and spans on a pairwise + spans + critique study, as one record."""
    annotator = UserFactory()
    study = make_study(annotators=[annotator], feedback_kinds=["pairwise", "spans", "critique"])
    from annotate.services.items import items_import
    from tests.factories import jsonl

    items_import(study=study, lines=jsonl([{"id": "q", "prompt": "Where is Paris?", "responses": ["In Spain.", "In France."]}]))
    assignment = assignment_next(study=study, annotator=annotator)
    first, second = assignment.query.ordered_responses()
    shown_second = "a" if assignment.display_order[0] == 1 else "b"
    answer = {
        "choice": shown_second,
        "spans": [
            {"response": first.pk, "start": 3, "end": 8, "category": "wrong-grounding", "note": "not Spain"},
            {"response": first.pk, "category": "missing-information", "note": "no country"},
        ],
        "critiques": [{"response": first.pk, "critique": "Wrong.", "revision": "In France."}],
    }
    annotation_submit(query=assignment.query, annotator=annotator, client_key="k", answer=answer)
    assert exported(study) == [
        {
            "question": "Where is Paris?",
            "prediction 1": "In Spain.",
            "prediction 2": "In France.",
            "feedback": {
                "errors": [{"error type": "Wrong-Grounding", "explanation": "not Spain", "start": 3, "end": 8}],
                "missing-info": [{"error type": "Missing-Information", "explanation": "no country"}],
                "corrected-prediction": "In France.",
            },
            "preference": [2],
        }
    ]


@pytest.mark.shared_data
def test_the_shared_qa_feedback_file_round_trips_exactly(shared_data):
    path = shared_data / "qa_feedback_dev_first250.json"
    original = json.loads(path.read_text(encoding="utf-8"))
    study = make_study()
    result = fgrlhf_import(study=study, data=path.read_bytes())
    assert result.prompts_created == len(original) == 250
    assert result.annotations_created == 250 * 7
    rows = exported(study)
    assert len(rows) == len(original)
    for number, (got, want) in enumerate(zip(rows, original, strict=True), start=1):
        assert got == want, f"record {number} differs"
    ties = sum(value == 0 for r in original for value in r["preference"])
    assert PairwiseChoice.objects.filter(choice="tie").count() == ties
    assert SpanPart.objects.exclude(category="missing-information").count() == sum(len(r["feedback"]["errors"]) for r in original)
    again = fgrlhf_import(study=study, data=path.read_bytes())
    assert again.prompts_unchanged == 250 and again.annotations_created == 0


def test_imported_votes_do_not_count_towards_position_bias():
    study = make_study()
    fgrlhf_import(study=study, data=qa_file(qa_record()))
    assert position_bias(study) == {"sided": 0, "left": 0, "left_rate": None}
