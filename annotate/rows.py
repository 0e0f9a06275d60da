"""Hand-written SELECTs on the annotation loop, with their rows turned back into model instances.

Compiling an ORM query costs about half a millisecond of Python, several times what PostgreSQL
spends running an indexed lookup, and every label costs a dozen statements (auth, access check,
claim, submit). So the statements of that loop are written out as SQL; this module supplies a
model's column list for them and loads the fetched values as the ORM would (the same database
converters, `from_db`), so the code that receives the instances cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Model


class Columns:
    """A model's concrete columns under a table alias, as a SELECT list and as a loader of row values.

    With alias None the names are bare, for a RETURNING list. Nothing is read from the model until
    first use, so a model's module can define its Columns right below the class.
    """

    def __init__(self, model: type[Model], alias: str | None):
        self.model = model
        self.alias = alias
        self._sql: dict[str, str] = {}  # per database vendor, as the converters
        self._converters: dict[str, list[tuple[list, Any]]] = {}

    @cached_property
    def fields(self) -> list:
        return list(self.model._meta.concrete_fields)

    @cached_property
    def attnames(self) -> list[str]:
        return [field.attname for field in self.fields]

    @cached_property
    def width(self) -> int:
        return len(self.fields)

    @property
    def sql(self) -> str:
        vendor = connection.vendor
        if vendor not in self._sql:
            quote = connection.ops.quote_name
            prefix = f"{self.alias}." if self.alias else ""
            self._sql[vendor] = ", ".join(prefix + quote(field.column) for field in self.fields)
        return self._sql[vendor]

    def converters(self) -> list[tuple[list, Any]]:
        """Per field, the converters the ORM applies to a fetched value (JSON text, SQLite dates, ...)."""
        vendor = connection.vendor
        if vendor not in self._converters:
            found = []
            for field in self.fields:
                column = field.get_col(self.alias or self.model._meta.db_table)
                found.append((connection.ops.get_db_converters(column) + column.get_db_converters(connection), column))
            self._converters[vendor] = found
        return self._converters[vendor]

    def load(self, row: Sequence, start: int = 0) -> Model:
        """The instance whose columns sit at row[start:start + width]."""
        values = list(row[start : start + self.width])
        for i, (converters, column) in enumerate(self.converters()):
            for converter in converters:
                values[i] = converter(values[i], column, connection)
        return self.model.from_db(DEFAULT_DB_ALIAS, self.attnames, values)


def fetch_one(sql: str, params: Sequence | dict) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: Sequence | dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence | dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# Imports below this many new queries leave the planner's statistics to autovacuum.
ANALYZE_AFTER_QUERIES = 500


def analyze_after_commit(models: Sequence[type[Model]], *, study_id: int, queries_created: int) -> None:
    """Refresh PostgreSQL's statistics of these tables once an import that at least doubled its study commits.

    Until the tables are analysed again the planner takes a study it has no figures for to hold
    about one query, and plans for that: after importing 2000 queries into a new study, counting
    an annotator's done queries took 24 ms instead of 2.6. Autovacuum analyses only after a tenth
    of a table changed, which a new study in a large database may never reach. Analysing when the
    study at least doubles keeps its figures within a factor of two at a logarithmic cost: twice
    for 20,000 queries imported 500 at a time.
    """
    if connection.vendor != "postgresql" or queries_created < ANALYZE_AFTER_QUERIES:
        return
    from annotate.models import Query  # here, not above: the models import this module

    if queries_created * 2 < Query.objects.filter(study_id=study_id).count():
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    transaction.on_commit(lambda: execute(f"ANALYZE {tables}", []))
