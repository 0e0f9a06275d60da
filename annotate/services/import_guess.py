"""Which import format a file looks like, so that an import in the wrong format says which one to use.

Every importer's error path calls `nothing_imported` with the file's first record (or first
bytes): the errors of a Label Studio export sent as JSON lines are not about the fields it lacks
but about the format chosen, and the message says so.
"""

from __future__ import annotations

import json

from annotate.errors import InvalidInput

PARQUET_MAGIC = b"PAR1"

FORMAT_NAMES = {
    "jsonl": "Preflab JSON lines (prompt, responses)",
    "fgrlhf": "FineGrainedRLHF qa_feedback",
    "trl": "TRL preference rows (prompt, chosen, rejected)",
    "labelstudio": "Label Studio JSON export",
    "argilla": "Argilla records",
}


def guess_format(first) -> str | None:
    """The import format whose records look like `first`: a parsed record, a list of them, or a file's first bytes.

    None when nothing gives it away. Looks only at the keys that name each format.
    """
    if isinstance(first, bytes | bytearray):
        return "trl" if bytes(first[:4]) == PARQUET_MAGIC else None
    if isinstance(first, list):
        return guess_format(first[0]) if first else None
    if not isinstance(first, dict):
        return None
    keys = set(first)
    if {"chosen", "rejected"} <= keys:
        return "trl"
    if "data" in keys and isinstance(first["data"], dict) and keys & {"annotations", "predictions", "id"}:
        return "labelstudio"
    if isinstance(first.get("fields"), dict) or any(isinstance(k, str) and k.endswith(".responses") for k in keys):
        return "argilla"
    if "question" in keys and "prediction 1" in keys:
        return "fgrlhf"
    if "prompt" in keys and "responses" in keys:
        return "jsonl"
    return None


def format_hint(format: str, first) -> str:
    """' It looks like ...: use format=X.' when the file looks like another format than `format`; else ''."""
    guessed = guess_format(first)
    if guessed is None or guessed == format:
        return ""
    return f" The file looks like {FORMAT_NAMES[guessed]}, not {FORMAT_NAMES[format]}: import it with format={guessed}."


def nothing_imported(messages: list[str], *, format: str, first, field: str | None = None, stopped: bool = False) -> InvalidInput:
    """The one error of a failed import: every problem found (naming record and field), then the format hint."""
    more = " (stopped after the first errors)" if stopped else ""
    return InvalidInput("Nothing was imported. " + " ".join(messages) + more + format_hint(format, first), field=field)


def first_record(data: bytes):
    """A file's first record for `guess_format`: its first JSON line, else the whole file as JSON, else its first bytes."""
    if data[:4] == PARQUET_MAGIC:
        return data[:4]
    text = data.decode("utf-8", errors="replace")
    line = next((line for line in text.splitlines() if line.strip()), "")
    for candidate in (line, text):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None
