"""A large import refreshes PostgreSQL's planner statistics when it commits; a small one leaves them to autovacuum."""

import pytest
from django.db import connection

from annotate.rows import ANALYZE_AFTER_QUERIES
from tests.factories import make_items, make_study

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's; CI runs it there"),
]


def estimated_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_an_import_that_doubles_its_study_analyzes_the_tables_it_filled(django_capture_on_commit_callbacks):
    study = make_study()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotate_query")
    before = estimated_rows("annotate_query")
    with django_capture_on_commit_callbacks(execute=True) as small:
        make_items(study, n_prompts=10, prefix="small")
    assert small == []  # too few to matter
    with django_capture_on_commit_callbacks(execute=True) as large:
        result = make_items(study, n_prompts=ANALYZE_AFTER_QUERIES, prefix="large")
    assert result.queries_created == ANALYZE_AFTER_QUERIES and len(large) == 1
    assert estimated_rows("annotate_query") >= before + ANALYZE_AFTER_QUERIES + 10
    assert estimated_rows("annotate_queryresponse") >= 2 * (ANALYZE_AFTER_QUERIES + 10)
    # The study has not doubled since: the next import of the same size leaves it to autovacuum.
    with django_capture_on_commit_callbacks(execute=True) as again:
        make_items(study, n_prompts=ANALYZE_AFTER_QUERIES, prefix="again")
    assert again == []
    # A new study's first large import is analysed, however large the tables already are.
    with django_capture_on_commit_callbacks(execute=True) as other:
        make_items(make_study(), n_prompts=ANALYZE_AFTER_QUERIES, prefix="other")
    assert len(other) == 1
