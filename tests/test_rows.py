"""Hand-written SELECTs give the same instances the ORM would: every column, converted the same way."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.models import Assignment, Prompt, Query, Response, Study
from annotate.rows import Columns, fetch_one, insert_rows
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def loaded(model, pk):
    columns = Columns(model, "t")
    row = fetch_one(f"SELECT {columns.sql} FROM {model._meta.db_table} t WHERE t.id = %s", [pk])
    return columns.load(row)


def field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_a_study_a_query_and_an_assignment_load_as_the_orm_loads_them():
    annotator = UserFactory()
    study = make_study(annotators=[annotator], span_taxonomy=[{"key": "wrong", "label": "Wrong – “quoted”"}])
    make_items(study, n_prompts=1)
    query = Query.objects.get(study=study)
    assignment = Assignment.objects.create(
        query=query, annotator=annotator, display_order=[1, 0], expires_at=timezone.now() + timedelta(minutes=5)
    )
    for model, pk in [(Study, study.pk), (Query, query.pk), (Assignment, assignment.pk)]:
        ours, orms = loaded(model, pk), model.objects.get(pk=pk)
        assert field_values(ours) == field_values(orms)
        assert not ours._state.adding and ours._state.db == "default"
    ours = loaded(Assignment, assignment.pk)
    assert ours.display_order == [1, 0] and ours.expires_at.tzinfo is not None
    assert loaded(Study, study.pk).span_taxonomy[0]["label"] == "Wrong – “quoted”"


def test_a_loaded_instance_saves_like_a_fetched_one():
    study = make_study()
    ours = loaded(Study, study.pk)
    ours.guidelines = "Read twice."
    ours.save(update_fields=["guidelines"])
    assert Study.objects.get(pk=study.pk).guidelines == "Read twice."


def test_bare_columns_serve_a_returning_list():
    study = make_study(overlap=1)
    columns = Columns(Study, None)
    row = fetch_one(f"UPDATE annotate_study SET overlap = 3 WHERE id = %s RETURNING {columns.sql}", [study.pk])
    returned = columns.load(row)
    assert returned.overlap == 3
    assert field_values(returned) == field_values(Study.objects.get(pk=study.pk))


def test_inserted_rows_come_back_as_bulk_create_would_have_stored_them():
    study = make_study()
    awkward = {"text": 'tab\there, new\nline, back\\slash, "quote", \\N, é ✓ 😀', "nested": [1, None, {"x": 2.5}]}
    rows = [(study.pk, f"ours-{i}", [{"role": "user", "content": awkward["text"]}], awkward if i else {}) for i in range(3)]
    ids = insert_rows(Prompt, ("study_id", "external_id", "messages", "metadata"), rows)
    theirs = Prompt.objects.bulk_create(
        [Prompt(study_id=s, external_id=e.replace("ours", "theirs"), messages=m, metadata=d) for s, e, m, d in rows]
    )
    assert len(set(ids)) == 3 and ids == sorted(ids)
    assert list(Prompt.objects.filter(pk__in=ids).values_list("external_id", flat=True)) == ["ours-0", "ours-1", "ours-2"]
    for pk, twin in zip(ids, theirs, strict=True):
        ours, expected = field_values(Prompt.objects.get(pk=pk)), field_values(Prompt.objects.get(pk=twin.pk))
        assert abs(ours.pop("created_at") - expected.pop("created_at")) < timedelta(minutes=1)
        ours.pop("id"), expected.pop("id")
        assert ours == {**expected, "external_id": expected["external_id"].replace("theirs", "ours")}
    assert insert_rows(Prompt, ("study_id", "external_id"), []) == []


def test_columns_not_named_take_their_defaults_and_later_inserts_get_new_ids():
    study = make_study()
    make_items(study, n_prompts=1)
    query = Query.objects.get(study=study)
    [pk] = insert_rows(Query, ("study_id", "prompt_id", "key", "asks"), [(study.pk, query.prompt_id, "pairwise:x", ["pairwise"])])
    added = Query.objects.get(pk=pk)
    assert (added.kind, added.round, added.strategy, added.score, added.priority, added.label_count) == (
        "pairwise", 0, "import", None, 0, 0
    )  # fmt: skip
    assert added.asks == ["pairwise"] and added.created_at is not None
    later = Query.objects.create(study=study, prompt_id=query.prompt_id, key="pairwise:y")  # the sequence moved on
    assert later.pk > pk > query.pk
    [pk] = insert_rows(Response, ("prompt_id", "index", "text"), [(query.prompt_id, 9, "More.")])
    added = Response.objects.get(pk=pk)
    # A prompt has no split until a run assigns one.
    assert (added.sampling, added.source, Prompt.objects.get(pk=query.prompt_id).split) == ({}, "", "")


def test_a_row_the_database_refuses_raises_djangos_error_and_stores_nothing():
    study = make_study()
    rows = [(study.pk, "same", [], {}), (study.pk, "same", [], {})]  # twice the same external id
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Prompt, ("study_id", "external_id", "messages", "metadata"), rows)
    assert not Prompt.objects.filter(study=study).exists()
