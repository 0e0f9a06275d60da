"""A large import refreshes PostgreSQL's planner statistics when it commits; a small one leaves them to autovacuum."""

import pytest
from django.db import connection

from annotate.rows import ANALYZE_AFTER_QUERIES
from annotate.services.items import items_import
from tests.factories import jsonl, make_study

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's; CI runs it there"),
]


def estimated_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def records(n: int, prefix: str) -> list[str]:
    return jsonl([{"id": f"{prefix}{i}", "prompt": f"Question {i}?", "responses": [f"yes {i}", f"no {i}"]} for i in range(n)])


def test_an_import_that_doubles_its_study_analyzes_the_tables_it_filled(django_capture_on_commit_callbacks):
    study = make_study()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotate_query")
    before = estimated_rows("annotate_query")
    with django_capture_on_commit_callbacks(execute=True) as small:
        items_import(study=study, lines=records(10, "small"))
    assert small == []  # too few to matter
    with django_capture_on_commit_callbacks(execute=True) as large:
        result = items_import(study=study, lines=records(ANALYZE_AFTER_QUERIES, "large"))
    assert result.queries_created == ANALYZE_AFTER_QUERIES and len(large) == 1
    assert estimated_rows("annotate_query") >= before + ANALYZE_AFTER_QUERIES + 10
    assert estimated_rows("annotate_queryresponse") >= 2 * (ANALYZE_AFTER_QUERIES + 10)
    # The study has not doubled since: the next import of the same size leaves it to autovacuum.
    with django_capture_on_commit_callbacks(execute=True) as again:
        items_import(study=study, lines=records(ANALYZE_AFTER_QUERIES, "again"))
    assert again == []
    # A new study's first large import is analysed, however large the tables already are.
    with django_capture_on_commit_callbacks(execute=True) as other:
        items_import(study=make_study(), lines=records(ANALYZE_AFTER_QUERIES, "other"))
    assert len(other) == 1
