"""Hand-written SQL: SELECTs on the annotation loop, with their rows turned back into model instances,
and the bulk INSERT of imports.

Compiling an ORM query costs about half a millisecond of Python, several times what PostgreSQL
spends running an indexed lookup, and every label costs a dozen statements (auth, access check,
claim, submit). So the statements of that loop are written out as SQL; this module supplies a
model's column list for them and loads the fetched values as the ORM would (the same database
converters, `from_db`), so the code that receives the instances cannot tell the difference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cached_property, partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Model
from django.utils import timezone


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


# Field types whose Python values the driver takes as they are; any other is prepared by the field.
PLAIN_TYPES = frozenset(
    {
        "AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "FloatField", "ForeignKey",
        "IntegerField", "PositiveBigIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField",
        "SmallIntegerField", "TextField",
    }
)  # fmt: skip


def copy_preparation(field) -> Callable[[Any], Any] | None:
    """How a field's Python value becomes what COPY takes: None where it is taken as it is.

    JSON goes as its text, as the field would send it, without the cost of the driver's adapter.
    """
    kind = field.get_internal_type()
    if kind in PLAIN_TYPES:
        return None
    if kind == "JSONField":
        encode = (field.encoder or json.JSONEncoder)().encode
        return lambda value: None if value is None else encode(value)
    return partial(field.get_db_prep_save, connection=connection)


def insert_rows(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence]) -> list[int]:
    """Insert rows of a model's `fields` (attnames: `prompt_id`, not `prompt`) and return their new ids, in order.

    The columns not named take their defaults (`auto_now_add`: now), as `bulk_create` gives them,
    and values are the fields' Python values (a dict for a JSON field). No model instance is made:
    an import of 20,000 prompts makes 120,000 rows. On PostgreSQL the ids are taken from the
    table's sequence in one statement and the rows sent by one COPY, several times faster than an
    INSERT of many rows; elsewhere (SQLite) it is `bulk_create`. Signals are not sent.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = model._base_manager.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in rows])
        return [instance.pk for instance in objects]
    opts = model._meta
    by_attname = {field.attname: field for field in opts.concrete_fields}
    named = [by_attname[name] for name in fields]
    prepare = [(i, prepared) for i, field in enumerate(named) if (prepared := copy_preparation(field)) is not None]
    now = timezone.now()
    rest = [field for field in opts.concrete_fields if field not in named and not field.primary_key]
    constants = []
    for field in rest:
        value = now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) else field.get_default()
        prepared = copy_preparation(field)
        constants.append(value if prepared is None else prepared(value))
    quote = connection.ops.quote_name
    table = opts.db_table
    columns = ", ".join(quote(field.column) for field in [opts.pk, *named, *rest])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s) ORDER BY 1",
            [quote(table), opts.pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        # The driver's own COPY: wrapped so that its errors reach callers as Django's (IntegrityError, ...).
        with connection.wrap_database_errors, cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                if prepare:
                    row = list(row)
                    for i, prepared in prepare:
                        row[i] = prepared(row[i])
                copy.write_row((pk, *row, *constants))
    return ids


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
