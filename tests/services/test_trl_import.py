"""TRL preference rows imported as prompts, responses and pairwise labels by "imported"."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.contrib.auth import get_user_model

from annotate.errors import InvalidInput
from annotate.models import Annotation, PairwiseChoice, Prompt, Query, Response
from annotate.services.exports import export_build
from annotate.services.trl_import import trl_import
from tests.factories import make_study

pytestmark = pytest.mark.django_db

STANDARD = {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."}
CONVERSATIONAL = {
    "chosen": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
    ],
    "rejected": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "No."},
    ],
}


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def parquet(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def chosen_and_rejected(study) -> list[tuple[str, str]]:
    """(chosen, rejected) per stored vote, read from the labels as a trainer would."""
    pairs = []
    for vote in PairwiseChoice.objects.filter(annotation__query__study=study).select_related("annotation__query"):
        first, second = vote.annotation.query.ordered_responses()
        pairs.append((first.text, second.text) if vote.choice == "a" else (second.text, first.text))
    return sorted(pairs)


def test_standard_and_conversational_rows_become_prompts_responses_and_labels_by_imported():
    study = make_study(feedback_kinds=["ratings"])
    result = trl_import(study=study, data=jsonl(STANDARD, CONVERSATIONAL))
    assert result.as_dict() == {
        "prompts_created": 2,
        "prompts_unchanged": 0,
        "responses_created": 4,
        "queries_created": 2,
        "records": 2,
        "annotations_created": 2,
        "study_configured": True,
    }
    study.refresh_from_db()
    assert study.feedback_kinds == ["pairwise"]
    prompts = {p.messages[0]["content"]: p for p in Prompt.objects.all()}
    assert prompts["Say hi."].messages == [{"role": "user", "content": "Say hi."}]
    assert sorted(r.text for r in prompts["Name a colour."].responses.all()) == ["Blue.", "Seven."]
    assert chosen_and_rejected(study) == [("Blue.", "Seven."), ("Hi!", "No.")]
    imported = get_user_model().objects.get(username="imported")
    assert not imported.has_usable_password()
    assert set(Annotation.objects.values_list("annotator", flat=True)) == {imported.pk}
    assert set(Query.objects.values_list("kind", "label_count")) == {("pairwise", 1)}
    assert set(PairwiseChoice.objects.values_list("strength", flat=True)) == {2}


def test_an_explicit_prompt_keeps_its_messages_and_a_strength_or_margin_column_sets_the_strength():
    study = make_study()
    rows = [
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
         "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}],
         "strength": 3},
        {"id": "m", "prompt": "Q", "chosen": "good", "rejected": "bad", "margin": 1 / 3, "score_chosen": 8.5},
    ]  # fmt: skip
    trl_import(study=study, data=jsonl(*rows))
    first = Prompt.objects.get(messages__0__role="system")
    assert first.messages[1] == {"role": "user", "content": "2+2?"}
    strengths = dict(PairwiseChoice.objects.values_list("annotation__query__prompt__external_id", "strength"))
    assert strengths["m"] == 1
    assert strengths[first.external_id] == 3
    assert Prompt.objects.get(external_id="m").metadata == {"margin": 1 / 3, "score_chosen": 8.5}


def test_conversations_that_repeat_the_explicit_prompt_keep_only_their_answers():
    study = make_study()
    question = [{"role": "user", "content": "Best pet?"}]
    row = {
        "prompt": "Best pet?",
        "chosen": [*question, {"role": "assistant", "content": "A cat."}],
        "rejected": [*question, {"role": "assistant", "content": "A rock."}],
    }
    trl_import(study=study, data=jsonl(row))
    assert Prompt.objects.get().messages == question
    assert chosen_and_rejected(study) == [("A cat.", "A rock.")]


def test_importing_the_same_rows_again_adds_nothing():
    study = make_study()
    trl_import(study=study, data=jsonl(STANDARD, CONVERSATIONAL))
    again = trl_import(study=study, data=jsonl(STANDARD, CONVERSATIONAL))
    assert again.prompts_created == again.annotations_created == again.queries_created == 0
    assert again.prompts_unchanged == 2
    assert Annotation.objects.count() == 2


def test_a_row_whose_id_was_imported_with_other_texts_is_refused():
    study = make_study()
    trl_import(study=study, data=jsonl({"id": 1, **STANDARD}))
    with pytest.raises(InvalidInput, match="line 1, field id: '1' was imported before"):
        trl_import(study=study, data=jsonl({"id": 1, **STANDARD, "rejected": "Eight."}))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "Q", "chosen": "a"}, "line 2, field rejected: is missing"),
        ({"chosen": "a", "rejected": "b"}, "line 2, field prompt: is missing"),
        ({"prompt": "Q", "chosen": "same", "rejected": "same"}, "line 2, field rejected: is the same text as chosen"),
        (
            {"prompt": "Q", "chosen": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}], "rejected": "c"},
            "line 2, field chosen: after the prompt must be exactly one assistant message",
        ),
        (
            {"chosen": [{"role": "user", "content": "x"}], "rejected": [{"role": "user", "content": "y"}]},
            "line 2, field prompt: is missing, and chosen and rejected share no opening messages",
        ),
        ({"prompt": "Q", "chosen": "a", "rejected": "b", "strength": 7}, "line 2, field strength: must be 1, 2 or 3"),
    ],
)
def test_a_bad_row_stores_nothing_and_names_the_line_and_field(row, message):
    study = make_study()
    with pytest.raises(InvalidInput, match=message):
        trl_import(study=study, data=jsonl(STANDARD, row))
    assert not Prompt.objects.exists() and not Annotation.objects.exists()


def test_a_parquet_file_round_trips_and_names_its_bad_row():
    study = make_study()
    rows = [STANDARD, {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}]
    trl_import(study=study, data=parquet(rows))
    assert chosen_and_rejected(study) == [("Blue.", "Seven."), ("Paris.", "Lyon.")]

    other = make_study(name="Other")
    with pytest.raises(InvalidInput, match="row 2, field score: holds nan"):
        trl_import(study=other, data=parquet([{**STANDARD, "score": 1.0}, {**STANDARD, "prompt": "Q2", "score": float("nan")}]))
    assert not Prompt.objects.filter(study=other).exists()


def test_the_trl_export_gives_back_the_imported_chosen_and_rejected():
    study = make_study()
    trl_import(study=study, data=jsonl(STANDARD, CONVERSATIONAL))
    rows = json.loads(json.dumps(list(export_build(study=study, format="trl").rows)))
    back = sorted(((r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows), key=json.dumps)
    assert back == [
        ([{"role": "user", "content": "Name a colour."}], "Blue.", "Seven."),
        ([{"role": "user", "content": "Say hi."}], "Hi!", "No."),
    ]
    # The export's own rows import into a new study as the same pairs.
    copy = make_study(name="Copy")
    trl_import(study=copy, data=jsonl(*rows))
    assert chosen_and_rejected(copy) == chosen_and_rejected(study)


def test_a_study_with_items_that_does_not_ask_pairwise_is_refused():
    study = make_study(feedback_kinds=["ranking"])
    Prompt.objects.create(study=study, external_id="x", messages=[{"role": "user", "content": "q"}])
    with pytest.raises(InvalidInput, match="asks for ranking; TRL preference rows need pairwise"):
        trl_import(study=study, data=jsonl(STANDARD))
    assert not Response.objects.exists()


def test_rows_sent_as_jsonl_items_say_they_look_like_trl():
    from annotate.services.items import items_import

    study = make_study()
    with pytest.raises(InvalidInput, match="looks like TRL preference rows .*format=trl"):
        items_import(study=study, lines=jsonl(STANDARD).splitlines())


def test_two_rows_with_one_id_or_an_empty_file_store_nothing():
    study = make_study()
    with pytest.raises(InvalidInput, match="line 2: has the same id as line 1"):
        trl_import(study=study, data=jsonl({"id": "x", **STANDARD}, {"id": "x", "prompt": "Q", "chosen": "a", "rejected": "b"}))
    with pytest.raises(InvalidInput, match="The file has no records"):
        trl_import(study=study, data=b"\n\n")
    assert not Prompt.objects.exists()


def test_a_parquet_file_sent_as_jsonl_or_fgrlhf_says_it_looks_like_trl():
    from annotate.services.fgrlhf import fgrlhf_import
    from annotate.services.items import items_import

    study = make_study()
    data = parquet([STANDARD])
    with pytest.raises(InvalidInput, match="looks like TRL preference rows.*format=trl"):
        items_import(study=study, lines=io.BytesIO(data))
    with pytest.raises(InvalidInput, match="looks like TRL preference rows.*format=trl"):
        fgrlhf_import(study=study, data=data)
