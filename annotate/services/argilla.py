"""Argilla v2 records imported as prompts, responses and the annotators' labels.

A file is a JSON array of records or JSON lines, in either shape the Argilla SDK writes
(docs.argilla.io, `rg.Record` and `dataset.records.to_list`):
- nested: `{id, fields: {...}, metadata: {...}, responses: {question: [{value, user_id, status}]},
  suggestions, vectors, status}` (responses may also be a list of {question_name, value,
  user_id, status});
- flat: the fields and metadata at the top, and per question `q.responses` (values),
  `q.responses.users` and `q.responses.status`, in the same order.

Conventions, as Argilla's settings (which tie a question to a field) are not in the records:
- the field `prompt` (text or chat messages) is the prompt; the fields `response`, `response_1`,
  `response_a`, ... (any name starting with `response`) are the responses, in record order; other
  fields and metadata go to the prompt's metadata; the record's `id` is its external id;
- a ranking response (`[{value, rank}]`, values naming response fields, rank 1 best, equal ranks
  tied) ranks the responses; of two responses it is a pairwise choice;
- on a record of two responses, a label answer that names a response field (or says tie, both
  bad, a, b, left or right) is a pairwise choice;
- a rating (a whole number 1-5), a text and a span response (`[{label, start, end}]`) are about
  the response whose field name starts the question's name (`response_1_helpfulness`: helpfulness
  of response_1), or the only response; the rest of the name is the rating's aspect; a text is
  a critique, or a revision where the question's name contains "revision".
Only responses with status "submitted" are imported (drafts and discarded ones are skipped), one
annotation per user, by the user `argilla:<user_id>` (made inactive, without a password). Any
other kind of value is refused naming the record and field. An empty study learns the span
labels and rating aspects it lacks.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import Study
from annotate.numbers import is_int
from annotate.services.items import parse_messages
from annotate.services.labelled_import import (
    CHOICE_WORDS,
    LabelledImportResult,
    LabelledRecord,
    StudyVocabulary,
    content_id,
    critique_add,
    fail,
    labelled_file_import,
    labels_of,
    responses_checked,
    span_part,
)
from annotate.text import refuse_unstorable_in_record

RECORD_KEYS = {
    "id",
    "_server_id",
    "status",
    "fields",
    "metadata",
    "responses",
    "suggestions",
    "vectors",
    "inserted_at",
    "updated_at",
}
SEPARATORS = ("_", ".", "-")


def normalized(record: dict, where: str) -> tuple[dict, dict, dict[str, list[dict]]]:
    """(fields, metadata, responses per question as [{value, user_id, status}]) of either shape."""
    if isinstance(record.get("fields"), dict):
        fields, metadata = record["fields"], record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise fail(where, "metadata", "must be an object.")
        raw = record.get("responses") or {}
        if isinstance(raw, list):
            grouped = defaultdict(list)
            for i, item in enumerate(raw):
                if not isinstance(item, dict) or not isinstance(item.get("question_name"), str):
                    raise fail(where, f"responses[{i}]", "must be an object with question_name, value and user_id.")
                grouped[item["question_name"]].append(item)
            raw = dict(grouped)
        if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
            raise fail(where, "responses", "must map each question to a list of {value, user_id, status}.")
        return fields, metadata, raw
    questions = {key.removesuffix(".responses") for key in record if key.endswith(".responses")}
    responses = {}
    for question in questions:
        values = record[f"{question}.responses"]
        users = record.get(f"{question}.responses.users")
        statuses = record.get(f"{question}.responses.status", ["submitted"] * len(values or []))
        if values is None:
            continue
        if not (isinstance(values, list) and isinstance(users, list) and isinstance(statuses, list)):
            raise fail(where, f"{question}.responses", "with .responses.users and .responses.status must be lists.")
        if not len(values) == len(users) == len(statuses):
            raise fail(where, f"{question}.responses.users", "must hold one user per response.")
        responses[question] = [{"value": v, "user_id": u, "status": s} for v, u, s in zip(values, users, statuses, strict=True)]
    taken = {key for key in record if key.split(".")[0] in questions} | RECORD_KEYS
    rest = {key: value for key, value in record.items() if key not in taken}
    return rest, {}, responses


def response_and_rest(question: str, names: list[str], where: str, at: str) -> tuple[int, str]:
    """The response a per-response question is about, and the rest of its name (the aspect)."""
    for index, name in sorted(enumerate(names), key=lambda pair: -len(pair[1])):
        for separator in SEPARATORS:
            if question.startswith(name + separator):
                return index, question[len(name) + 1 :]
    if len(names) == 1:
        return 0, question
    raise fail(where, at, f"the question's name starts with none of the response fields ({', '.join(names)}).")


def record_parse(record, where: str, vocabulary: StudyVocabulary) -> LabelledRecord:
    if not isinstance(record, dict):
        raise InvalidInput(f"{where}: must be a record object, not {type(record).__name__}.")
    if record.get("id") is not None:
        where = f"{where} (id {record['id']})"
    refuse_unstorable_in_record(record, where)
    fields, metadata, responses = normalized(record, where)
    if "prompt" not in fields:
        raise fail(where, "fields.prompt", "is missing (the record's prompt, text or chat messages).")
    messages = parse_messages(fields["prompt"], f"{where}, fields")
    names = [key for key in fields if key.startswith("response")]
    for name in names:
        if not isinstance(fields[name], str) or not fields[name].strip():
            raise fail(where, f"fields.{name}", "must be non-empty text.")
    texts = responses_checked([fields[name] for name in names], where, "fields", "fields named response, response_1, ...")
    by_user: dict[str, dict] = defaultdict(lambda: {"choice": None, "ranking": None, "spans": [], "critiques": {}, "ratings": []})
    for question, answers in sorted(responses.items()):
        for i, answer in enumerate(answers):
            at = f"responses.{question}[{i}]"
            if not isinstance(answer, dict) or "value" not in answer:
                raise fail(where, at, "must be an object with value, user_id and status.")
            if answer.get("status", "submitted") != "submitted":
                continue
            user = answer.get("user_id")
            if not isinstance(user, str | int) or isinstance(user, bool) or not str(user).strip():
                raise fail(where, f"{at}.user_id", "must name the user who answered.")
            answer_parse(by_user[str(user)], question, answer["value"], names, texts, where, f"{at}.value", vocabulary)
    labels = []
    for user, parts in sorted(by_user.items()):
        parts["critiques"] = list(parts["critiques"].values())
        labels += labels_of(f"argilla:{user}", f"user {user}", len(texts), where, "responses", **parts)
    external_id = str(record["id"]) if record.get("id") is not None else content_id("argilla", messages, texts)
    extra = {key: value for key, value in fields.items() if key != "prompt" and key not in names}
    return LabelledRecord(
        where=where,
        external_id=external_id,
        messages=messages,
        responses=texts,
        metadata={**extra, **metadata},
        labels=labels,
        source="argilla",
    )


def answer_parse(parts: dict, question: str, value, names: list[str], texts: list[str], where: str, at: str, vocabulary) -> None:
    """Add one submitted answer to its user's parts."""
    if value == []:  # no spans marked
        return
    if isinstance(value, list) and value and all(isinstance(v, dict) and "rank" in v for v in value):
        ranks: dict[int, list[int]] = defaultdict(list)
        for item in value:
            if item.get("value") not in names or not is_int(item["rank"]):
                raise fail(where, at, f"each item must name a response field ({', '.join(names)}) with a whole-number rank.")
            ranks[item["rank"]].append(names.index(item["value"]))
        if sorted(i for group in ranks.values() for i in group) != list(range(len(names))):
            raise fail(where, at, f"must rank each response field ({', '.join(names)}) once.")
        parts["ranking"] = [sorted(ranks[rank]) for rank in sorted(ranks)]
        return
    if isinstance(value, list) and all(isinstance(v, dict) and {"label", "start", "end"} <= set(v) for v in value):
        index, _ = response_and_rest(question, names, where, at)
        for k, span in enumerate(value):
            category = vocabulary.category(span["label"], where, f"{at}[{k}].label")
            parts["spans"].append(span_part(texts[index], index, category, span["start"], span["end"], where, f"{at}[{k}]"))
        return
    if is_int(value):
        index, aspect = response_and_rest(question, names, where, at)
        if not 1 <= value <= 5:
            raise fail(where, at, f"a rating must be a whole number from 1 to 5, not {value}.")
        parts["ratings"].append({"response": index, "aspect": vocabulary.aspect(aspect, where, at), "value": value})
        return
    if isinstance(value, str) and len(names) == 2 and (value in names or value.casefold() in CHOICE_WORDS):
        parts["choice"] = "ab"[names.index(value)] if value in names else CHOICE_WORDS[value.casefold()]
        return
    if isinstance(value, str):
        index, _ = response_and_rest(question, names, where, at)
        critique_add(parts["critiques"], index, question, value)
        return
    raise fail(where, at, "cannot be imported: known answers are a ranking, a rating (1-5), a text and spans.")


@transaction.atomic
def argilla_import(*, study: Study, data: bytes) -> LabelledImportResult:
    """Import Argilla v2 records with their submitted responses; all or nothing, idempotent (see the module docstring)."""
    return labelled_file_import(study=study, data=data, format="argilla", what="Argilla records", parse=record_parse)
