"""Text the database can hold: PostgreSQL's text and JSON columns refuse the NUL character.

Every service that stores text from outside (answers, imports, study and run settings) checks it
here first, so a stray U+0000 is refused naming its field, on SQLite too, rather than failing the
statement on PostgreSQL.
"""

from __future__ import annotations

from annotate.errors import InvalidInput

NUL = "\x00"


def nul_at(value, path: str = "") -> str | None:
    """The path (`a.b[2]`) of the first string in value, a key of an object included, that holds NUL."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return inner
            found = nul_at(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def nul_problem(where: str) -> str:
    return f"{where} contains a NUL character (\\u0000), which text cannot hold."


def refuse_nul_in_record(record: dict, where: str) -> None:
    """An import record: the error names its place (`line 3`) and field, as the import's other errors do."""
    found = nul_at(record)
    if found is not None:
        raise InvalidInput(f"{where}, field {nul_problem(found)}", field=found.split(".")[0].split("[")[0])


def refuse_nul(value, name: str) -> None:
    """Raise InvalidInput naming the part of `value` (called `name`) that holds a NUL, if one does."""
    found = nul_at(value, name)
    if found is not None:
        raise InvalidInput(nul_problem(found), field=found)
