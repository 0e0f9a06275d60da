"""Whole numbers from outside, checked before they are stored.

PostgreSQL refuses an integer past its column's range ("integer out of range"), which would be a
500, and SQLite stores what PostgreSQL refuses; so every number a request, an import or a command
supplies is checked here first, on both, and refused naming its field.
"""

from __future__ import annotations

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

from annotate.errors import InvalidInput

# The shortest repr of a refused value shown back: a number of a million digits is not echoed.
SHOWN_CHARS = 40


def is_int(value) -> bool:
    """A JSON whole number: an int that is not a bool (True is 1 to Python, not to a client)."""
    return isinstance(value, int) and not isinstance(value, bool)


def column_range(model: type[models.Model], field_name: str) -> tuple[int, int]:
    """The (lowest, highest) value the field's column holds on PostgreSQL, the narrower of the two backends."""
    field = model._meta.get_field(field_name)
    return BaseDatabaseOperations.integer_field_ranges[field.get_internal_type()]


def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def whole_number(value, name: str, *, low: int, high: int) -> int:
    """`value` if it is a whole number from low to high; otherwise InvalidInput naming `name`."""
    if not is_int(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, not {shown(value)}.", field=name)
    return value
