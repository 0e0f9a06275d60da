"""Label Studio's JSON export imported as prompts, responses and the annotators' labels.

The export is a JSON array of tasks `{id, data: {...}, annotations: [{id, completed_by, result:
[{from_name, to_name, type, value}], was_cancelled}], predictions}` (labelstud.io/guide/export).
A Label Studio project is free-form, so the task's data must follow these conventions:

- `data.prompt`: the prompt, text or a list of {role, content} messages;
- the responses: `data.items`, a list of `{id, body}` (what a List tag shows and a Ranker
  orders; an item is named by its id), or else the data keys `response`, `response_a`,
  `response_b`, `response_1`, ... (named by the key), in the order they appear;
- every other data key goes to the prompt's metadata; the prompt's external id is the task id.

Results, by type (each per-response result finds its response by `to_name`, which must name
one, unless the task has a single response):
- `pairwise` (value.selected left/right) -> a pairwise choice, left = the first response;
- `choices` on a task of two responses -> a pairwise choice: the choice names a response, or
  is left/right/a/b, tie, or both bad;
- `ranker` (value.ranker: {name: [ids, best first]}) -> a ranking of the responses (of two: a
  pairwise choice); the ids must be each response once; buckets (several lists) are refused,
  since the export does not say which bucket is better;
- `labels` (value {start, end, text, labels}) -> a span of the first label's category on the
  response, checked against the quoted text;
- `textarea` (value.text) -> the critique of the response, or its revision where the control's
  from_name contains "revision";
- `rating` (value.rating, 1-5) -> a rating of the response on the aspect named by from_name.

Any other result type is refused naming the task and field. Each annotation is one annotator's
answer, by the user `labelstudio:<completed_by>` (made inactive, without a password), or
`imported` where the export leaves completed_by out; cancelled annotations and model predictions
are skipped. An empty study learns the span labels and rating aspects it lacks.
"""

from __future__ import annotations

import re

from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import Study
from annotate.numbers import is_int
from annotate.services.items import parse_messages
from annotate.services.labelled_import import (
    CHOICE_WORDS,
    IMPORTED_USERNAME,
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

RESPONSE_KEY = re.compile(r"^response(_\w+)?$")


def responses_of(data: dict, where: str) -> tuple[list[str], list[str], set[str]]:
    """(names, texts, the data keys they came from)."""
    if "items" in data:
        items = data["items"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise fail(where, "data.items", "must be a list of {id, body} objects.")
        names, texts = [], []
        for i, item in enumerate(items):
            body = item.get("body", item.get("text"))
            if item.get("id") is None or not isinstance(body, str) or not body.strip():
                raise fail(where, f"data.items[{i}]", "needs an id and a non-empty body.")
            names.append(str(item["id"]))
            texts.append(body)
        return names, texts, {"items"}
    keys = [key for key in data if RESPONSE_KEY.match(key)]
    for key in keys:
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(where, f"data.{key}", "must be non-empty text.")
    return keys, [data[key] for key in keys], set(keys)


def annotator_of(annotation: dict, where: str, at: str) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id", who.get("email"))
    if who is None:
        return IMPORTED_USERNAME
    if not (is_int(who) or isinstance(who, str)) or not str(who).strip():
        raise fail(where, f"{at}.completed_by", "must be a user id.")
    return f"labelstudio:{who}"


def task_parse(task, where: str, vocabulary: StudyVocabulary) -> LabelledRecord:
    if not isinstance(task, dict):
        raise InvalidInput(f"{where}: must be a task object with data and annotations, not {type(task).__name__}.")
    if task.get("id") is not None:
        where = f"{where} (task {task['id']})"
    refuse_unstorable_in_record(task, where)
    data = task.get("data")
    if not isinstance(data, dict):
        raise fail(where, "data", "must be an object with prompt and the responses.")
    if "prompt" not in data:
        raise fail(where, "data.prompt", "is missing (the task's prompt, text or chat messages).")
    messages = parse_messages(data["prompt"], f"{where}, data")
    names, texts, used = responses_of(data, where)
    responses_checked(texts, where, "data", "data.items, or data.response_a, data.response_b, ...")
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise fail(where, "annotations", "must be a list.")
    labels = []
    for i, annotation in enumerate(annotations):
        at = f"annotations[{i}]"
        if not isinstance(annotation, dict) or not isinstance(annotation.get("result", []), list):
            raise fail(where, at, "must be an object with a result list.")
        if annotation.get("was_cancelled"):
            continue
        parts = results_parse(annotation.get("result", []), names, texts, where, at, vocabulary)
        name = f"annotation {annotation.get('id', i)}"
        labels += labels_of(annotator_of(annotation, where, at), name, len(texts), where, at, **parts)
    task_id = task.get("id")
    external_id = str(task_id) if task_id is not None else content_id("labelstudio", messages, texts)
    metadata = {key: value for key, value in data.items() if key != "prompt" and key not in used}
    return LabelledRecord(
        where=where,
        external_id=external_id,
        messages=messages,
        responses=texts,
        metadata=metadata,
        labels=labels,
        source="labelstudio",
    )


def results_parse(results: list, names: list[str], texts: list[str], where: str, at: str, vocabulary) -> dict:
    """One annotation's results as the parts of labels_of: choice, ranking, spans, critiques, ratings."""
    parts: dict = {"choice": None, "ranking": None, "spans": [], "critiques": [], "ratings": []}
    critiques: dict[int, dict] = {}
    for j, result in enumerate(results):
        here = f"{at}.result[{j}]"
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            raise fail(where, here, "must be an object with type and value.")
        kind, value = result.get("type"), result["value"]

        def response(result=result, here=here) -> int:
            to_name = result.get("to_name")
            if to_name in names:
                return names.index(to_name)
            if len(names) == 1:
                return 0
            raise fail(where, f"{here}.to_name", f"{to_name!r} names none of the task's responses ({', '.join(names)}).")

        if kind == "pairwise":
            selected = value.get("selected")
            if selected not in ("left", "right"):
                raise fail(where, f"{here}.value.selected", f"must be left or right, not {selected!r}.")
            parts["choice"] = CHOICE_WORDS[selected]
        elif kind == "choices":
            chosen = value.get("choices")
            if not isinstance(chosen, list) or len(chosen) != 1 or not isinstance(chosen[0], str):
                raise fail(where, f"{here}.value.choices", "must hold exactly one choice.")
            word = chosen[0]
            if word in names[:2] and len(names) == 2:
                parts["choice"] = "ab"[names.index(word)]
            elif word.casefold() in CHOICE_WORDS:
                parts["choice"] = CHOICE_WORDS[word.casefold()]
            else:
                raise fail(
                    where, f"{here}.value.choices", f"{word!r} names no response ({', '.join(names)}) and is not tie or both bad."
                )
        elif kind == "ranker":
            parts["ranking"] = ranker_groups(value, names, where, here)
        elif kind == "labels":
            index = response()
            chosen = value.get("labels")
            if not isinstance(chosen, list) or not chosen:
                raise fail(where, f"{here}.value.labels", "must name the span's label.")
            category = vocabulary.category(chosen[0], where, f"{here}.value.labels")
            start, end, quote = value.get("start"), value.get("end"), value.get("text")
            parts["spans"].append(span_part(texts[index], index, category, start, end, where, f"{here}.value", quote))
        elif kind == "textarea":
            index = response()
            lines = value.get("text")
            if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
                raise fail(where, f"{here}.value.text", "must be a list of text.")
            critique_add(critiques, index, str(result.get("from_name", "")), "\n".join(lines))
        elif kind == "rating":
            rating = value.get("rating")
            if not is_int(rating) or not 1 <= rating <= 5:
                raise fail(where, f"{here}.value.rating", f"must be a whole number from 1 to 5, not {rating!r}.")
            aspect = vocabulary.aspect(result.get("from_name"), where, f"{here}.from_name")
            parts["ratings"].append({"response": response(), "aspect": aspect, "value": rating})
        else:
            raise fail(
                where,
                f"{here}.type",
                f"{kind!r} cannot be imported (known: pairwise, choices, ranker, labels, textarea, rating).",
            )
    parts["critiques"] = list(critiques.values())
    return parts


def ranker_groups(value: dict, names: list[str], where: str, here: str) -> list[list[int]]:
    ranker = value.get("ranker")
    if not isinstance(ranker, dict) or len(ranker) != 1:
        raise fail(
            where, f"{here}.value.ranker", "must hold one ordered list; buckets are refused, as the export does not rank them."
        )
    (order,) = ranker.values()
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(names):
        raise fail(where, f"{here}.value.ranker", f"must order each of the task's responses ({', '.join(names)}) once.")
    return [[names.index(str(item))] for item in order]


@transaction.atomic
def labelstudio_import(*, study: Study, data: bytes) -> LabelledImportResult:
    """Import a Label Studio JSON export with its annotations; all or nothing, idempotent (see the module docstring)."""
    return labelled_file_import(study=study, data=data, format="labelstudio", what="Label Studio tasks", parse=task_parse)
