"""Text the database can and should hold: no NUL character, and no text past PREFLAB_MAX_TEXT_CHARS.

PostgreSQL's text and JSON columns refuse the NUL character; and one text of megabytes (a
response, a guideline) would be stored, then sent to every annotator's browser and to every
training run. Every service that stores text from outside (answers, imports, study and run
settings) checks it here first, so either is refused naming its field, on SQLite too.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings

from annotate.errors import InvalidInput

NUL = "\x00"


def strings_in(value, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in value, the keys of objects included, with its path (`a.b[2]`)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield inner, key
            yield from strings_in(item, inner)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from strings_in(item, f"{path}[{i}]")


def nul_at(value, path: str = "") -> str | None:
    """The path of the first string in value, a key of an object included, that holds NUL."""
    return next((where for where, text in strings_in(value, path) if NUL in text), None)


def nul_problem(where: str) -> str:
    return f"{where} contains a NUL character (\\u0000), which text cannot hold."


def text_problem(value, path: str = "") -> tuple[str, str] | None:
    """(path, what is wrong) for the first string in value that holds NUL or is longer than the limit."""
    limit = settings.PREFLAB_MAX_TEXT_CHARS
    for where, text in strings_in(value, path):
        if NUL in text:
            return where, nul_problem(where)
        if len(text) > limit:
            return where, f"{where} is {len(text):,} characters long; a text may hold at most {limit:,} (PREFLAB_MAX_TEXT_CHARS)."
    return None


def refuse_unstorable_in_record(record: dict, where: str) -> None:
    """An import record: the error names its place (`line 3`) and field, as the import's other errors do."""
    found = text_problem(record)
    if found is not None:
        path, problem = found
        raise InvalidInput(f"{where}, field {problem}", field=path.split(".")[0].split("[")[0])


def refuse_unstorable(value, name: str) -> None:
    """Raise InvalidInput naming the part of `value` (called `name`) that holds a NUL or is too long, if one does."""
    found = text_problem(value, name)
    if found is not None:
        path, problem = found
        raise InvalidInput(problem, field=path)
