"""Numbers from outside, checked before they are stored.

PostgreSQL refuses an integer past its column's range ("integer out of range"), which would be a
500, and SQLite stores what PostgreSQL refuses; so every number a request, an import or a command
supplies is checked here first, on both, and refused naming its field. Files read as JSON go
through json_loads, which refuses what PostgreSQL's JSON cannot hold (NaN, Infinity) and what
Python will not read (whole numbers of thousands of digits) as a bad line rather than a 500.
"""

from __future__ import annotations

import json
import math

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


class JsonNumberError(ValueError):
    """A JSON text holds a number that cannot be stored; the message says which, to follow `line 3: `."""


def refuse_constant(name: str):
    raise JsonNumberError(f"holds {name}, which is not a number JSON allows")


def json_loads(text: str | bytes):
    """json.loads for text from outside; raises json.JSONDecodeError or JsonNumberError (both ValueErrors)."""
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (json.JSONDecodeError, JsonNumberError):
        raise
    except ValueError:  # int() refuses to read more digits than sys.get_int_max_str_digits()
        raise JsonNumberError("holds a whole number too long to read") from None


def unstorable_json(value, path: str) -> tuple[str, str] | None:
    """(path, what is wrong) for what in `value` (read from a binary file such as Parquet, not from JSON text) a
    JSON column cannot hold: NaN and infinities (PostgreSQL's JSON refuses them), and values that are not JSON
    at all (bytes, dates, decimals); None when all is well.
    """
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"holds {value}, which is not a number JSON allows")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, f"has a key {shown(key)} that is not text"
            found = unstorable_json(item, f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unstorable_json(item, f"{path}[{i}]")
            if found:
                return found
        return None
    return path, f"holds a {type(value).__name__}, which JSON cannot hold"
