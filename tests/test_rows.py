"""Hand-written SELECTs give the same instances the ORM would: every column, converted the same way."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Assignment, Query, Study
from annotate.rows import Columns, fetch_one
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
