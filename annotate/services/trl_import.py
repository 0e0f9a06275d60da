"""TRL preference rows (prompt / chosen / rejected) imported as prompts, responses and pairwise labels.

TRL's preference format, in either of its two shapes:
- standard: `prompt`, `chosen` and `rejected` are text;
- conversational: lists of {role, content} messages; `prompt` may be left out, the whole
  conversation then sitting in both `chosen` and `rejected`, whose shared beginning is the prompt.
  Where `chosen` and `rejected` repeat an explicit `prompt` before their answer (as many published
  sets do), the repeat is dropped.
After the prompt, `chosen` and `rejected` must each be one assistant turn (a text, a list of one
assistant message): a Preflab response is one text.

A file is JSON lines (one row an object; errors name the line) or Parquet (detected by its
`PAR1` magic bytes; errors name the row, counting from 1).

Each row is stored, by the user "imported", as a prompt (external id: the row's `id`, else a
digest of prompt, chosen and rejected, so importing a file again adds nothing), the two responses,
one pairwise query and its one label choosing `chosen`. Which of the two comes first (index 0,
shown as A) is decided by a digest of the row, so an import does not put every winner on one side.
Strength: a `strength` column of 1-3 (as Preflab's own `trl` export writes), else a `margin`
equal to the margin Preflab writes for a strength (1/3, 2/3, 1.0), else the default 2;
scores such as `score_chosen` / `score_rejected` say how good each is, not by how much one won,
so they are kept but do not set the strength. Every other column goes to the prompt's metadata.
An empty study is set to ask for pairwise; one with items must already.
"""

from __future__ import annotations

import hashlib
import io
import json

from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import Study
from annotate.numbers import is_int, unstorable_json
from annotate.services.import_guess import PARQUET_MAGIC
from annotate.services.items import CHAT_ROLES, parse_messages
from annotate.services.labelled_import import (
    IMPORTED_USERNAME,
    ImportedLabel,
    LabelledImportResult,
    LabelledRecord,
    content_id,
    fail,
    jsonl_items,
    labelled_file_import,
)
from annotate.text import refuse_unstorable_in_record

ROW_FIELDS = ("id", "prompt", "chosen", "rejected")


def messages_of(value, where: str, field: str) -> list[dict]:
    """A conversational column: a non-empty list of {role, content} messages."""
    if not isinstance(value, list) or not value:
        raise fail(where, field, "must be text or a non-empty list of {role, content} messages.")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) or message.get("role") not in CHAT_ROLES:
            raise fail(
                where, f"{field}[{i}]", f"must be an object with a role ({', '.join(sorted(CHAT_ROLES))}) and text content."
            )
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def completion(value, where: str, field: str) -> str:
    """`chosen` or `rejected` after the prompt: one text, or one assistant message."""
    if isinstance(value, str):
        text = value
    else:
        messages = messages_of(value, where, field)
        if len(messages) != 1 or messages[0]["role"] != "assistant":
            raise fail(where, field, "after the prompt must be exactly one assistant message (a response is one text).")
        text = messages[0]["content"]
    if not text.strip():
        raise fail(where, field, "is empty.")
    return text


def split_conversations(chosen: list[dict], rejected: list[dict], where: str) -> tuple[list[dict], list[dict], list[dict]]:
    """An implicit prompt: the messages `chosen` and `rejected` share from the start."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise fail(where, "prompt", "is missing, and chosen and rejected share no opening messages to take it from.")
    return chosen[:shared], chosen[shared:], rejected[shared:]


def after_prompt(value, messages: list[dict]):
    """A conversation that repeats the explicit prompt before its answer (as many published sets do) loses the repeat."""
    if isinstance(value, list) and len(value) > len(messages):
        head = [
            {"role": m.get("role"), "content": m.get("content")} if isinstance(m, dict) else m for m in value[: len(messages)]
        ]
        if head == messages:
            return value[len(messages) :]
    return value


def strength_of(row: dict, where: str) -> int:
    from learning.data import strength_to_margin

    strength = row.get("strength")
    if strength is not None:
        if not is_int(strength) or strength not in (1, 2, 3):
            raise fail(where, "strength", f"must be 1, 2 or 3, not {strength!r}.")
        return strength
    margin = row.get("margin")
    for candidate in (1, 2, 3):
        if (
            isinstance(margin, int | float)
            and not isinstance(margin, bool)
            and abs(margin - strength_to_margin(candidate)) < 1e-9
        ):
            return candidate
    return 2


def row_parse(row, where: str) -> LabelledRecord:
    if not isinstance(row, dict):
        raise InvalidInput(f"{where}: must be an object with prompt, chosen and rejected, not {type(row).__name__}.")
    refuse_unstorable_in_record(row, where)
    for name in ("chosen", "rejected"):
        if row.get(name) is None:
            raise fail(where, name, "is missing.")
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    if prompt is None:
        if isinstance(chosen, str) or isinstance(rejected, str):
            raise fail(where, "prompt", "is missing; only conversational rows (lists of messages) may leave it out.")
        messages, chosen, rejected = split_conversations(
            messages_of(chosen, where, "chosen"), messages_of(rejected, where, "rejected"), where
        )
    elif isinstance(prompt, str):
        messages = parse_messages(prompt, where)
    else:
        messages = messages_of(prompt, where, "prompt")
    if prompt is not None:
        chosen, rejected = after_prompt(chosen, messages), after_prompt(rejected, messages)
    chosen_text, rejected_text = completion(chosen, where, "chosen"), completion(rejected, where, "rejected")
    if chosen_text == rejected_text:
        raise fail(where, "rejected", "is the same text as chosen.")
    metadata = {key: value for key, value in row.items() if key not in ROW_FIELDS}
    problem = unstorable_json(metadata, "")
    if problem:
        raise fail(where, problem[0], problem[1] + ".")
    raw_id = row.get("id")
    if raw_id is None:
        external_id = content_id("trl", messages, chosen_text, rejected_text)
    elif (isinstance(raw_id, str) or is_int(raw_id)) and str(raw_id).strip() and len(str(raw_id).strip()) <= 200:
        external_id = str(raw_id).strip()
    else:
        raise fail(where, "id", "must be a non-empty text or whole number of at most 200 characters.")
    # Chosen first or second by a digest of the row: stable on re-import, and no side always wins.
    flip = hashlib.sha256(json.dumps([external_id, chosen_text, rejected_text]).encode()).digest()[0] % 2 == 1
    label = ImportedLabel(
        annotator=IMPORTED_USERNAME, shown=(0, 1), name="pair", choice="b" if flip else "a", strength=strength_of(row, where)
    )
    return LabelledRecord(
        where=where,
        external_id=external_id,
        messages=messages,
        responses=[rejected_text, chosen_text] if flip else [chosen_text, rejected_text],
        metadata=metadata,
        labels=[label],
        source="trl",
    )


def parquet_rows(data: bytes) -> list[tuple[str, object]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"Nothing was imported: the file starts as Parquet but cannot be read ({exc}).") from None
    return [(f"row {number}", row) for number, row in enumerate(rows, start=1)]


@transaction.atomic
def trl_import(*, study: Study, data: bytes) -> LabelledImportResult:
    """Import TRL preference rows (JSON lines or Parquet) as pairwise labels by "imported"; all or nothing, idempotent."""
    rows = parquet_rows(data) if data[:4] == PARQUET_MAGIC else jsonl_items(data)
    return labelled_file_import(
        study=study,
        data=data,
        format="trl",
        what="TRL preference rows",
        parse=lambda row, where, _: row_parse(row, where),
        items=rows,
    )
