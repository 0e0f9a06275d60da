"""Importing prompts and responses, and turning them into candidate queries."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import Prompt, Query, QueryResponse, Response, Study
from annotate.models.items import QueryKind
from annotate.models.studies import PER_RESPONSE_KINDS, FeedbackKind, SelectionStrategy
from annotate.numbers import JsonNumberError, column_range, json_loads
from annotate.rows import analyze_after_commit, insert_rows
from annotate.services.gold import gold_answer_check
from annotate.services.import_guess import PARQUET_MAGIC, nothing_imported
from annotate.services.study_status import refuse_if_archived
from annotate.text import refuse_unstorable_in_record

MAX_RESPONSES = 16
# Re-importing an id with new texts adds responses to its prompt, up to what Response.index holds.
MAX_RESPONSE_INDEX = column_range(Response, "index")[1]
MIN_RANKING, MAX_RANKING = 3, 8
MAX_ERRORS_REPORTED = 20
CHAT_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class ImportRecord:
    line: int
    external_id: str
    messages: list[dict]
    responses: list[str]
    metadata: dict
    gold: dict | None = None  # the known answer of the one query the record makes (services.gold)


@dataclass
class ImportResult:
    prompts_created: int = 0
    prompts_unchanged: int = 0
    responses_created: int = 0
    queries_created: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def parse_messages(value, where: str) -> list[dict]:
    """A prompt as chat messages: a plain string is one user turn."""
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(f"{where}, field prompt: is empty.", field="prompt")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            f"{where}, field prompt: must be a string or a non-empty list of {{role, content}} messages.", field="prompt"
        )
    messages = []
    for i, message in enumerate(value):
        if (
            not isinstance(message, dict)
            or set(message) - {"role", "content"}
            or "role" not in message
            or "content" not in message
        ):
            raise InvalidInput(f"{where}, field prompt[{i}]: must be an object with exactly role and content.", field="prompt")
        if message["role"] not in CHAT_ROLES:
            raise InvalidInput(
                f"{where}, field prompt[{i}].role: {message['role']!r} is not one of {sorted(CHAT_ROLES)}.", field="prompt"
            )
        if not isinstance(message["content"], str):
            raise InvalidInput(f"{where}, field prompt[{i}].content: must be a string.", field="prompt")
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def parse_record(obj, line: int, *, min_responses: int = 2, max_responses: int = MAX_RESPONSES) -> ImportRecord:
    where = f"line {line}"
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: must be a JSON object, not {type(obj).__name__}.")
    refuse_unstorable_in_record(obj, where)
    unknown = set(obj) - {"id", "prompt", "responses", "metadata", "gold"}
    if unknown:
        raise InvalidInput(
            f"{where}, field {sorted(unknown)[0]}: unknown field (known: id, prompt, responses, metadata, gold).",
            field=sorted(unknown)[0],
        )
    if "prompt" not in obj:
        raise InvalidInput(f"{where}, field prompt: is missing.", field="prompt")
    messages = parse_messages(obj["prompt"], where)
    responses = obj.get("responses")
    if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
        raise InvalidInput(f"{where}, field responses: must be a list of strings.", field="responses")
    if len(responses) < min_responses:
        raise InvalidInput(
            f"{where}, field responses: this study needs at least {min_responses} responses per prompt, got {len(responses)}.",
            field="responses",
        )
    if len(responses) > max_responses:
        raise InvalidInput(
            f"{where}, field responses: this study takes at most {max_responses} responses per prompt, got {len(responses)}.",
            field="responses",
        )
    if any(not r.strip() for r in responses):
        raise InvalidInput(f"{where}, field responses: a response is empty.", field="responses")
    if len(set(responses)) != len(responses):
        raise InvalidInput(f"{where}, field responses: the same response text appears twice.", field="responses")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidInput(f"{where}, field metadata: must be an object.", field="metadata")
    raw_id = obj.get("id")
    if raw_id is None:
        # No id: the prompt's content is its identity, so re-importing the same file is still a no-op.
        external_id = "sha256:" + hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:32]
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id).strip():
        external_id = str(raw_id).strip()
        if len(external_id) > 200:
            raise InvalidInput(f"{where}, field id: longer than 200 characters.", field="id")
    else:
        raise InvalidInput(f"{where}, field id: must be a non-empty string or integer.", field="id")
    gold = obj.get("gold")
    if gold is not None and not isinstance(gold, dict):
        raise InvalidInput(f'{where}, field gold: must be an object such as {{"choice": "a"}}.', field="gold")
    return ImportRecord(line=line, external_id=external_id, messages=messages, responses=responses, metadata=metadata, gold=gold)


def parse_jsonl(
    lines: Iterable[bytes | str], *, min_responses: int = 2, max_responses: int = MAX_RESPONSES
) -> list[ImportRecord]:
    """Parse and check every line before anything is written; errors name the line and field."""
    records: list[ImportRecord] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    first = None  # the first line read as JSON, for the hint of an error
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            if number == 1 and raw.startswith(PARQUET_MAGIC):
                first = raw  # a binary file: the hint can say which
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(f"line {number}: is not valid UTF-8.")
                continue
        if not raw.strip():
            continue
        try:
            obj = json_loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: is not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        except JsonNumberError as exc:
            errors.append(f"line {number}: {exc}.")
            continue
        if first is None:
            first = obj
        try:
            record = parse_record(obj, number, min_responses=min_responses, max_responses=max_responses)
        except InvalidInput as exc:
            errors.append(exc.message)
            continue
        if record.external_id in seen:
            errors.append(f"line {number}, field id: {record.external_id!r} already appears on line {seen[record.external_id]}.")
            continue
        seen[record.external_id] = number
        records.append(record)
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise nothing_imported(errors, format="jsonl", first=first, stopped=len(errors) >= MAX_ERRORS_REPORTED)
    if not records:
        raise InvalidInput("Nothing was imported: the file has no records.")
    return records


def pair_key(kind: str, response_ids: Iterable[int]) -> str:
    return f"{kind}:" + "-".join(str(i) for i in response_ids)


# Records stored at a time: a large file takes minutes, and progress is reported per chunk.
IMPORT_CHUNK = 1000


@transaction.atomic
def items_import(
    *,
    study: Study,
    lines: Iterable[bytes | str],
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = IMPORT_CHUNK,
) -> ImportResult:
    """Import JSONL prompts with responses; each pair of a prompt's responses becomes a pairwise query.

    All or nothing: any bad line stores nothing, and so does a conflict found in a later chunk,
    since every chunk is stored in the one transaction. Re-importing an id adds only responses it
    lacks. ``progress(done, total)`` is called after each chunk is stored, counting records.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    min_responses, max_responses = response_limits(study)
    records = parse_jsonl(lines, min_responses=min_responses, max_responses=max_responses)
    # One import into a study at a time, so that the ids a chunk found new are still new when it
    # stores them. NO KEY: rows that only refer to the study (runs, members) may be added meanwhile.
    list(Study.objects.select_for_update(no_key=True).filter(pk=study.pk).values_list("pk"))
    refuse_if_archived(study, "importing")
    result = ImportResult()
    for start in range(0, len(records), chunk_size):
        records_store(study=study, records=records[start : start + chunk_size], result=result)
        if progress is not None:
            progress(min(start + chunk_size, len(records)), len(records))
    analyze_after_commit([Prompt, Response, Query, QueryResponse], study_id=study.pk, queries_created=result.queries_created)
    return result


def records_store(*, study: Study, records: list[ImportRecord], result: ImportResult) -> None:
    """Store parsed records (ids unique among them) and the queries they make; adds to `result`.

    One statement per table writes what is new (`insert_rows`: COPY on PostgreSQL), and nothing
    written is read back: the only reads are of the prompts with these ids, and of the responses
    and queries of those found, since they were imported before.
    """
    existing = {
        p.external_id: p
        for p in Prompt.objects.filter(study=study, external_id__in=[r.external_id for r in records]).only(
            "id", "external_id", "messages"
        )
    }
    for record in records:
        prompt = existing.get(record.external_id)
        if prompt is not None and prompt.messages != record.messages:
            raise InvalidInput(
                f"Nothing was imported. line {record.line}, field prompt: "
                f"id {record.external_id!r} was imported before with a different prompt.",
                field="prompt",
            )
    new = [r for r in records if r.external_id not in existing]
    new_ids = insert_rows(
        Prompt,
        ("study_id", "external_id", "messages", "metadata"),
        [(study.pk, r.external_id, r.messages, r.metadata) for r in new],
    )
    result.prompts_created += len(new)
    prompt_ids = {p.external_id: p.pk for p in existing.values()}
    prompt_ids.update(zip([r.external_id for r in new], new_ids, strict=True))
    before = [p.pk for p in existing.values()]
    response_ids = responses_store(records=records, prompt_ids=prompt_ids, before=before, result=result)
    result.queries_created += queries_store(study=study, response_ids=response_ids, before=before)
    golds_store(study=study, records=[r for r in records if r.gold is not None], prompt_ids=prompt_ids, response_ids=response_ids)


def golds_store(
    *, study: Study, records: list[ImportRecord], prompt_ids: dict[str, int], response_ids: dict[int, list[int]]
) -> None:
    """Mark the one query each record with a gold answer makes as gold; a record that makes several is refused."""
    for record in records:
        plans = plan_queries(study.feedback_kinds, response_ids[prompt_ids[record.external_id]])
        where = f"Nothing was imported. line {record.line}, field gold"
        if len(plans) != 1:
            raise InvalidInput(
                f"{where}: this record makes {len(plans)} queries; a gold answer belongs to a record that makes one "
                "(two responses for pairwise).",
                field="gold",
            )
        query = Query.objects.get(study=study, key=plans[0].key)
        try:
            query.gold_answer = gold_answer_check(query=query, answer=record.gold, size=len(plans[0].response_ids))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}", field=exc.field) from exc
        query.is_gold = True
        query.save(update_fields=["is_gold", "gold_answer"])


def responses_store(
    *, records: list[ImportRecord], prompt_ids: dict[str, int], before: list[int], result: ImportResult
) -> dict[int, list[int]]:
    """Add the responses each prompt lacks (by text), after those it has; returns every response id per prompt, by index."""
    known: dict[int, list[tuple[int, int, str]]] = {}  # prompt id -> (index, id, text), by index
    for prompt_id, index, pk, text in (
        Response.objects.filter(prompt_id__in=before)
        .order_by("prompt_id", "index")
        .values_list("prompt_id", "index", "id", "text")
    ):
        known.setdefault(prompt_id, []).append((index, pk, text))
    rows = []
    for record in records:
        prompt_id = prompt_ids[record.external_id]
        have = known.get(prompt_id, [])
        texts = {text for _, _, text in have}
        next_index = have[-1][0] + 1 if have else 0
        for text in record.responses:
            if text not in texts:
                if next_index > MAX_RESPONSE_INDEX:
                    raise InvalidInput(
                        f"Nothing was imported. line {record.line}, field responses: id {record.external_id!r} already "
                        f"has {next_index} responses, the most one prompt can hold.",
                        field="responses",
                    )
                rows.append((prompt_id, next_index, text, "import"))
                next_index += 1
    ids = insert_rows(Response, ("prompt_id", "index", "text", "source"), rows)
    result.responses_created += len(rows)
    grown = {prompt_id for prompt_id, *_ in rows}
    result.prompts_unchanged += sum(1 for prompt_id in before if prompt_id not in grown)
    response_ids = {}  # in the file's order, which the queries keep
    for record in records:
        prompt_id = prompt_ids[record.external_id]
        response_ids[prompt_id] = [pk for _, pk, _ in known.get(prompt_id, [])]
    for (prompt_id, *_), pk in zip(rows, ids, strict=True):
        response_ids[prompt_id].append(pk)
    return response_ids


@dataclass(frozen=True)
class PlannedQuery:
    key: str
    kind: str
    asks: list[str]
    response_ids: tuple[int, ...]


def plan_queries(kinds: list[str], response_ids: list[int]) -> list[PlannedQuery]:
    """The queries a prompt's responses make under the study's kinds.

    Pairwise: every pair. Ranking: all responses in one query. Spans, critiques and ratings ride
    along on those queries, or, with neither, get one single-response query per response.
    """
    kinds = kinds or [FeedbackKind.PAIRWISE]
    per_response = [k for k in kinds if k in PER_RESPONSE_KINDS]
    if FeedbackKind.PAIRWISE in kinds:
        return [
            PlannedQuery(pair_key(QueryKind.PAIRWISE, pair), QueryKind.PAIRWISE, [FeedbackKind.PAIRWISE, *per_response], pair)
            for pair in itertools.combinations(response_ids, 2)
        ]
    if FeedbackKind.RANKING in kinds:
        ids = tuple(response_ids)
        return [PlannedQuery(pair_key(QueryKind.RANKING, ids), QueryKind.RANKING, [FeedbackKind.RANKING, *per_response], ids)]
    return [PlannedQuery(pair_key(QueryKind.SINGLE, (rid,)), QueryKind.SINGLE, per_response, (rid,)) for rid in response_ids]


def response_limits(study: Study) -> tuple[int, int]:
    kinds = study.feedback_kinds or [FeedbackKind.PAIRWISE]
    if FeedbackKind.RANKING in kinds:
        return MIN_RANKING, MAX_RANKING
    if FeedbackKind.PAIRWISE in kinds:
        return 2, MAX_RESPONSES
    return 1, MAX_RESPONSES


def first_priority(study: Study) -> int:
    """A new query's place in the claim order (highest first), under the study's selection strategy.

    Random: a random place, so that annotators are asked in no particular order rather than in the
    file's, where a prompt's pairs come one after another and invite anchoring.
    """
    if study.selection_strategy == SelectionStrategy.RANDOM:
        return random.randrange(2**31 - 1)
    return 0


def queries_store(*, study: Study, response_ids: dict[int, list[int]], before: list[int]) -> int:
    """Create the queries these prompts' responses (ids by index, per prompt) make that do not exist yet; returns how many.

    Only prompts imported before (`before`) can have queries already.
    """
    present = set(Query.objects.filter(study=study, prompt_id__in=before).values_list("key", flat=True))
    missing = [
        (prompt_id, plan)
        for prompt_id, ids in response_ids.items()
        for plan in plan_queries(study.feedback_kinds, ids)
        if plan.key not in present
    ]
    ids = insert_rows(
        Query,
        ("study_id", "prompt_id", "kind", "key", "asks", "priority"),
        [(study.pk, prompt_id, plan.kind, plan.key, plan.asks, first_priority(study)) for prompt_id, plan in missing],
    )
    insert_rows(
        QueryResponse,
        ("query_id", "response_id", "position"),
        [
            (query_id, response_id, position)
            for query_id, (_, plan) in zip(ids, missing, strict=True)
            for position, response_id in enumerate(plan.response_ids)
        ],
    )
    return len(ids)
