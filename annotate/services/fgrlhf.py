"""FineGrainedRLHF's qa_feedback format, both ways: a file imported as labels, labels exported as that file.

The format (Wu et al. 2023; allenai/FineGrainedRLHF, tasks/qa_feedback) is a JSON array of records

    {"question": str, "passages": [...], "gold": str, ..., "prediction 1": str, ..., "prediction 4": str,
     "feedback": {"errors": [{"error type", "explanation", "start", "end"}],
                  "missing-info": [{"error type", "passage_id", "sentence_id"}],
                  "corrected-prediction": str},
     "preference": [1v2, 1v3, 1v4, 2v3, 2v4, 3v4: 1 = first better, 2 = second better, 0 = tie]}

where the error spans, the missing information and the correction are all about prediction 1.

How a record is stored, attributed to the user "imported" (created without a usable password):
- a Prompt whose one user turn is the question; every other top-level field (passages, gold,
  anything else) goes to Prompt.metadata as it is, so nothing is lost;
- a Response per prediction N, at index N-1;
- a pairwise Query per pair asking [pairwise], with one annotation: 1 -> a, 2 -> b, 0 -> tie; a and
  b at the default strength 2 (the file has no strength), a tie with none;
- one single-response Query on prediction 1 asking [spans, critique], because that is what the
  FG-RLHF annotators judged: prediction 1 alone. Its annotation holds the error spans (error type
  -> the taxonomy key whose label or key matches, ignoring case; the exact original string and
  any extra fields in SpanPart.metadata; explanation -> note), each missing-info item as a
  missing-information span whose metadata is the item itself, and the corrected prediction as a
  CritiquePart revision (no CritiquePart when it is empty).
The queries are created already labelled (label_count 1); the annotations have no assignment
(nobody was shown anything here). A study with no prompts yet is configured to ask for
pairwise, spans and critique; a study with prompts must already ask for those.

Export (format=fgrlhf) reverses this: one record per prompt and annotator who labelled it, in
prompt order, holding only the format's fields (no annotator id: use `raw` for that):
- question: the prompt's last user turn; Prompt.metadata's fields beside it;
- prediction N: the prompt's responses in index order;
- preference: that annotator's latest pairwise vote on each pair (a/b mapped back to 1/2 by the
  pair's order; tie and both-bad -> 0), null where they gave none;
- feedback.errors / missing-info: the spans on prediction 1 of their latest annotation that asked
  for spans and showed prediction 1; error type from SpanPart.metadata where imported, otherwise
  the taxonomy label; a native missing-information span becomes {"error type":
  "Missing-Information", "explanation": note};
- feedback.corrected-prediction: their latest revision of prediction 1, or "".
So an imported file comes back record for record, field for field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import (
    Annotation,
    CritiquePart,
    PairwiseChoice,
    Prompt,
    Query,
    QueryResponse,
    Response,
    SpanPart,
    Study,
)
from annotate.models.feedback import ORDERED_CHOICES
from annotate.models.items import QueryKind
from annotate.models.studies import MISSING_INFORMATION, FeedbackKind, default_span_taxonomy
from annotate.numbers import JsonNumberError, is_int, json_loads
from annotate.rows import analyze_after_commit
from annotate.selectors.labels import annotation_responses, annotations_with_parts
from annotate.services.import_guess import first_record, format_hint, nothing_imported
from annotate.services.items import first_priority, pair_key
from annotate.services.labelled_import import IMPORTED_USERNAME, LabelledImportResult, import_user, study_configure
from annotate.services.study_status import refuse_if_archived
from annotate.text import refuse_unstorable_in_record

IMPORT_KINDS = [FeedbackKind.PAIRWISE.value, FeedbackKind.SPANS.value, FeedbackKind.CRITIQUE.value]
FEEDBACK_FIELDS = ("errors", "missing-info", "corrected-prediction")
ERROR_FIELDS = ("error type", "explanation", "start", "end")
PREDICTION = re.compile(r"^prediction ([1-9][0-9]*)$")
RESERVED = {"question", "feedback", "preference"}
MISSING_INFO_TYPE = "Missing-Information"
CHOICE_OF_PREFERENCE = {1: "a", 2: "b", 0: "tie"}
PREFERENCE_OF_CHOICE = {"a": 1, "b": 2, "tie": 0, "both_bad": 0}
MAX_ERRORS_REPORTED = 20
PROMPT_CHUNK = 200


@dataclass(frozen=True)
class FgrlhfRecord:
    """One checked record, ready to store; `original` is the record as parsed, to compare on re-import."""

    number: int
    external_id: str
    question: str
    predictions: list[str]
    metadata: dict
    errors: list[dict]
    missing: list[dict]
    corrected: str
    preference: list[int]
    original: dict


@dataclass(frozen=True)
class PlannedLabel:
    """One query to create with its one imported annotation: a pairwise vote, or the judgement of prediction 1."""

    record: FgrlhfRecord
    query: Query
    shown: tuple[int, ...]
    name: str  # "1v2" ... or "prediction-1"; part of the annotation's client_key
    vote: int | None = None  # the preference value, for a pairwise query


# --- reading a file -------------------------------------------------------------------------


def where(number: int) -> str:
    return f"record {number} (array index {number - 1})"


def fail(number: int, field_name: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{where(number)}, field {field_name}: {problem}", field=field_name)


def load_array(data: bytes | str) -> list:
    """The file's JSON array; a JSON-lines file is refused with a hint rather than misread."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"Nothing was imported: the file is not valid UTF-8 (byte {exc.start})." + format_hint("fgrlhf", data[:4])
            ) from None
    try:
        value = json_loads(data)
    except JsonNumberError as exc:
        raise InvalidInput(f"Nothing was imported: the file {exc}.") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"Nothing was imported: the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "an FG-RLHF file is one JSON array of records." + format_hint("fgrlhf", first_record(data.encode()))
        ) from None
    if not isinstance(value, list):
        raise InvalidInput(f"Nothing was imported: an FG-RLHF file is a JSON array of records, not a {type(value).__name__}.")
    if not value:
        raise InvalidInput("Nothing was imported: the file has no records.")
    return value


def category_lookup(taxonomy: list[dict]) -> dict[str, str]:
    """Error-type strings (label or key, any case) to taxonomy keys."""
    lookup = {}
    for category in taxonomy:
        lookup[category["key"].casefold()] = category["key"]
        lookup[str(category.get("label") or category["key"]).casefold()] = category["key"]
    return lookup


def external_id_of(question: str, predictions: list[str]) -> str:
    """A record has no id: the question and its predictions are its identity, so re-import is a no-op."""
    digest = hashlib.sha256(json.dumps([question, predictions], ensure_ascii=False).encode()).hexdigest()
    return f"fgrlhf:{digest[:32]}"


def parse_predictions(obj: dict, number: int) -> list[str]:
    numbers = sorted(int(m.group(1)) for key in obj if (m := PREDICTION.match(key)))
    if len(numbers) < 2 or numbers != list(range(1, len(numbers) + 1)):
        raise fail(number, "prediction 1", f"needs fields prediction 1 .. prediction N (N >= 2), found {numbers or 'none'}.")
    predictions = []
    for n in numbers:
        text = obj[f"prediction {n}"]
        if not isinstance(text, str) or not text.strip():
            raise fail(number, f"prediction {n}", "must be non-empty text.")
        predictions.append(text)
    return predictions


def parse_errors(value, number: int, first: str, categories: dict[str, str]) -> list[dict]:
    if not isinstance(value, list):
        raise fail(number, "feedback.errors", "must be a list.")
    errors = []
    for i, item in enumerate(value):
        at = f"feedback.errors[{i}]"
        if not isinstance(item, dict):
            raise fail(number, at, "must be an object with error type, explanation, start and end.")
        missing = [key for key in ERROR_FIELDS if key not in item]
        if missing:
            raise fail(number, f"{at}.{missing[0]}", "is missing.")
        error_type = item["error type"]
        if not isinstance(error_type, str) or error_type.casefold() not in categories:
            known = ", ".join(sorted(set(categories.values())))
            raise fail(number, f"{at}.error type", f"{error_type!r} is not in the study's span taxonomy ({known}).")
        if not isinstance(item["explanation"], str):
            raise fail(number, f"{at}.explanation", "must be text.")
        start, end = item["start"], item["end"]
        if not (is_int(start) and is_int(end) and 0 <= start < end <= len(first)):
            raise fail(
                number,
                f"{at}.end",
                f"start {start!r} and end {end!r} must satisfy 0 <= start < end <= {len(first)}, "
                "the length of prediction 1 in characters (code points).",
            )
        extra = {key: val for key, val in item.items() if key not in ERROR_FIELDS}
        errors.append(
            {
                "category": categories[error_type.casefold()],
                "start": start,
                "end": end,
                "note": item["explanation"],
                "metadata": {"error type": error_type, **extra},
            }
        )
    return errors


def parse_missing(value, number: int) -> list[dict]:
    if not isinstance(value, list):
        raise fail(number, "feedback.missing-info", "must be a list.")
    missing = []
    for i, item in enumerate(value):
        at = f"feedback.missing-info[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("error type"), str) or not item["error type"].strip():
            raise fail(number, f"{at}.error type", "each item must be an object with a non-empty error type.")
        explanation = item.get("explanation")
        missing.append({"note": explanation if isinstance(explanation, str) else "", "metadata": dict(item)})
    return missing


def parse_record(obj, number: int, categories: dict[str, str]) -> FgrlhfRecord:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where(number)}: must be a JSON object, not {type(obj).__name__}.")
    refuse_unstorable_in_record(obj, where(number))
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise fail(number, "question", "must be non-empty text.")
    predictions = parse_predictions(obj, number)
    feedback = obj.get("feedback")
    if not isinstance(feedback, dict):
        raise fail(number, "feedback", f"must be an object with {', '.join(FEEDBACK_FIELDS)}.")
    for key in FEEDBACK_FIELDS:
        if key not in feedback:
            raise fail(number, f"feedback.{key}", "is missing.")
    unknown = sorted(set(feedback) - set(FEEDBACK_FIELDS))
    if unknown:
        raise fail(number, f"feedback.{unknown[0]}", f"unknown field (known: {', '.join(FEEDBACK_FIELDS)}).")
    errors = parse_errors(feedback["errors"], number, predictions[0], categories)
    missing = parse_missing(feedback["missing-info"], number)
    corrected = feedback["corrected-prediction"]
    if not isinstance(corrected, str):
        raise fail(number, "feedback.corrected-prediction", "must be text (empty when there is no correction).")
    pairs = len(predictions) * (len(predictions) - 1) // 2
    preference = obj.get("preference")
    if not isinstance(preference, list) or len(preference) != pairs:
        raise fail(number, "preference", f"must be a list of {pairs} values, one per pair of predictions (1v2, 1v3, ...).")
    for i, value in enumerate(preference):
        if not is_int(value) or value not in CHOICE_OF_PREFERENCE:
            raise fail(number, f"preference[{i}]", f"must be 1 (first better), 2 (second better) or 0 (tie), not {value!r}.")
    metadata = {key: value for key, value in obj.items() if key not in RESERVED and not PREDICTION.match(key)}
    return FgrlhfRecord(
        number=number,
        external_id=external_id_of(question, predictions),
        question=question,
        predictions=predictions,
        metadata=metadata,
        errors=errors,
        missing=missing,
        corrected=corrected,
        preference=list(preference),
        original=obj,
    )


def parse_records(values: list, categories: dict[str, str]) -> list[FgrlhfRecord]:
    """Check every record before anything is stored; errors name the record and the field."""
    records: list[FgrlhfRecord] = []
    errors: list[InvalidInput] = []
    seen: dict[str, int] = {}
    for number, obj in enumerate(values, start=1):
        try:
            record = parse_record(obj, number, categories)
        except InvalidInput as exc:
            errors.append(exc)
        else:
            if record.external_id in seen:
                errors.append(
                    InvalidInput(f"{where(number)}: the same question and predictions as record {seen[record.external_id]}.")
                )
            seen.setdefault(record.external_id, number)
            records.append(record)
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise nothing_imported(
            [e.message for e in errors],
            format="fgrlhf",
            first=values,
            field=errors[0].field,
            stopped=len(errors) >= MAX_ERRORS_REPORTED,
        )
    return records


# --- storing --------------------------------------------------------------------------------


def imported_user() -> AbstractBaseUser:
    """The user imported labels are attributed to; nobody can log in as them."""
    return import_user(IMPORTED_USERNAME)


def configure_study(study: Study) -> bool:
    """Make the study ask for what FG-RLHF records hold; returns whether it changed anything."""
    taxonomy_set = not study.span_taxonomy and not study.prompts.exists()
    if taxonomy_set:
        study.span_taxonomy = default_span_taxonomy()
        study.save(update_fields=["span_taxonomy"])
    return study_configure(study, IMPORT_KINDS, "FG-RLHF records") or taxonomy_set


def check_unchanged(study: Study, annotator: AbstractBaseUser, records: list[FgrlhfRecord], existing: dict) -> None:
    """A record imported before must come back unchanged; a changed one is an error, not a silent skip."""
    if not existing:
        return
    by_id = {r.external_id: r for r in records}
    prompts = list(existing.values())
    stored = {
        prompt.external_id: record
        for start in range(0, len(prompts), PROMPT_CHUNK)
        for prompt, record in prompt_records(study, prompts[start : start + PROMPT_CHUNK], annotator)
    }
    for external_id in existing:
        record = by_id[external_id]
        before = stored.get(external_id, {})
        for key in sorted(set(before) | set(record.original), key=str):
            if before.get(key) != record.original.get(key):
                raise fail(record.number, key, "this record was imported before with a different value; nothing was imported.")


def with_ids(objects: list) -> list:
    """bulk_create's objects, which PostgreSQL and SQLite >= 3.35 return with their ids."""
    if objects and objects[0].pk is None:
        raise RuntimeError("This database does not return ids from bulk inserts; use PostgreSQL or SQLite >= 3.35.")
    return objects


@transaction.atomic
def fgrlhf_import(*, study: Study, data: bytes | str) -> LabelledImportResult:
    """Import an FG-RLHF qa_feedback file into a study as prompts, responses and "imported" labels.

    All or nothing; re-importing the same file stores nothing new. See the module docstring for
    how each field is stored.
    """
    values = load_array(data)
    study = Study.objects.select_for_update().get(pk=study.pk)  # one import into a study at a time
    refuse_if_archived(study, "importing", locked=True)
    result = LabelledImportResult(records=len(values))
    result.study_configured = configure_study(study)
    records = parse_records(values, category_lookup(study.span_taxonomy))
    annotator = imported_user()
    existing = {p.external_id: p for p in Prompt.objects.filter(study=study, external_id__in=[r.external_id for r in records])}
    check_unchanged(study, annotator, records, existing)
    new = [r for r in records if r.external_id not in existing]
    result.prompts_unchanged = len(records) - len(new)
    if new:
        store(study, annotator, new, result)
    return result


def store(study: Study, annotator: AbstractBaseUser, records: list[FgrlhfRecord], result: LabelledImportResult) -> None:
    """Bulk inserts, one per table, so a few hundred records take well under a second."""
    prompts = with_ids(
        Prompt.objects.bulk_create(
            [
                Prompt(
                    study=study,
                    external_id=r.external_id,
                    messages=[{"role": "user", "content": r.question}],
                    metadata=r.metadata,
                )
                for r in records
            ]
        )
    )
    responses = with_ids(
        Response.objects.bulk_create(
            [
                Response(prompt=prompt, index=index, text=text, source="fgrlhf")
                for prompt, record in zip(prompts, records, strict=True)
                for index, text in enumerate(record.predictions)
            ]
        )
    )
    ids_of: dict[int, list[int]] = defaultdict(list)
    for response in responses:
        ids_of[response.prompt_id].append(response.pk)

    # Per record: one pairwise query per preference value, then the query on prediction 1.
    planned: list[PlannedLabel] = []
    for prompt, record in zip(prompts, records, strict=True):
        ids = ids_of[prompt.pk]
        for (i, j), value in zip(itertools.combinations(range(len(ids)), 2), record.preference, strict=True):
            query = Query(study=study, prompt=prompt, kind=QueryKind.PAIRWISE, key=pair_key(QueryKind.PAIRWISE, (ids[i], ids[j])))
            query.asks, query.label_count, query.priority = [FeedbackKind.PAIRWISE.value], 1, first_priority(study)
            planned.append(PlannedLabel(record, query, (ids[i], ids[j]), f"{i + 1}v{j + 1}", vote=value))
        query = Query(study=study, prompt=prompt, kind=QueryKind.SINGLE, key=pair_key(QueryKind.SINGLE, ids[:1]))
        query.asks, query.label_count = [FeedbackKind.SPANS.value, FeedbackKind.CRITIQUE.value], 1
        query.priority = first_priority(study)
        planned.append(PlannedLabel(record, query, (ids[0],), "prediction-1"))
    queries = with_ids(Query.objects.bulk_create([p.query for p in planned]))
    QueryResponse.objects.bulk_create(
        [
            QueryResponse(query_id=p.query.pk, response_id=response_id, position=position)
            for p in planned
            for position, response_id in enumerate(p.shown)
        ]
    )
    annotations = with_ids(
        Annotation.objects.bulk_create(
            [
                Annotation(query=p.query, annotator=annotator, client_key=f"{p.record.external_id}:s{study.pk}:{p.name}")
                for p in planned
            ]
        )
    )

    votes, spans, critiques = [], [], []
    for p, annotation in zip(planned, annotations, strict=True):
        if p.vote is not None:
            choice = CHOICE_OF_PREFERENCE[p.vote]
            strength = 2 if choice in ORDERED_CHOICES else None  # the file has no strength; a tie has none at all
            votes.append(PairwiseChoice(annotation=annotation, choice=choice, shown_choice=choice, strength=strength))
            continue
        first = p.shown[0]
        spans += [SpanPart(annotation=annotation, response_id=first, **error) for error in p.record.errors]
        spans += [
            SpanPart(annotation=annotation, response_id=first, category=MISSING_INFORMATION, **item) for item in p.record.missing
        ]
        if p.record.corrected:
            critiques.append(CritiquePart(annotation=annotation, response_id=first, critique="", revision=p.record.corrected))
    PairwiseChoice.objects.bulk_create(votes)
    SpanPart.objects.bulk_create(spans)
    CritiquePart.objects.bulk_create(critiques)
    result.prompts_created = len(prompts)
    result.responses_created = len(responses)
    result.queries_created = len(queries)
    result.annotations_created = len(annotations)
    analyze_after_commit([Prompt, Response, Query, QueryResponse, Annotation], study_id=study.pk, queries_created=len(queries))


# --- writing records ------------------------------------------------------------------------


def question_of(messages: list[dict]) -> str:
    """The prompt as one question: its last user turn (its only turn, for imported prompts)."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-1] if users else (messages[-1]["content"] if messages else "")


def error_item(span: SpanPart, labels: dict[str, str]) -> dict:
    extra = dict(span.metadata or {})
    error_type = extra.pop("error type", None) or labels.get(span.category, span.category)
    return {"error type": error_type, "explanation": span.note, "start": span.start, "end": span.end, **extra}


def missing_item(span: SpanPart) -> dict:
    if span.metadata:
        return dict(span.metadata)
    return {"error type": MISSING_INFO_TYPE, "explanation": span.note}


def feedback_of(spans: list[SpanPart], labels: dict[str, str]) -> dict:
    """One response's spans in the qa_feedback shape, in the order they were given."""
    return {
        "errors": [error_item(s, labels) for s in spans if s.category != MISSING_INFORMATION],
        "missing-info": [missing_item(s) for s in spans if s.category == MISSING_INFORMATION],
    }


def span_labels(study: Study) -> dict[str, str]:
    return {c["key"]: str(c.get("label") or c["key"]) for c in study.span_taxonomy or []}


def record_build(prompt: Prompt, responses: list[Response], annotations: list[Annotation], labels: dict[str, str]) -> dict:
    """One annotator's labels on one prompt as a qa_feedback record (annotations oldest first)."""
    ids = [r.pk for r in responses]
    record = {"question": question_of(prompt.messages)}
    record.update({k: v for k, v in (prompt.metadata or {}).items() if k not in RESERVED and not PREDICTION.match(k)})
    record.update({f"prediction {n}": r.text for n, r in enumerate(responses, start=1)})
    votes: dict[tuple[int, int], int] = {}
    spans: list[SpanPart] = []
    revision = ""
    for annotation in annotations:
        shown = [r.pk for r in annotation_responses(annotation)]
        vote = getattr(annotation, "pairwise", None)
        if vote is not None and len(shown) == 2:
            value = PREFERENCE_OF_CHOICE[vote.choice]
            votes[(shown[0], shown[1])] = value
            votes[(shown[1], shown[0])] = {1: 2, 2: 1}.get(value, value)
        if FeedbackKind.SPANS in (annotation.query.asks or []) and ids and ids[0] in shown:
            spans = [s for s in annotation.spans.all() if s.response_id == ids[0]]
        for critique in annotation.critiques.all():
            if ids and critique.response_id == ids[0]:
                revision = critique.revision
    record["feedback"] = {**feedback_of(spans, labels), "corrected-prediction": revision}
    record["preference"] = [votes.get((ids[i], ids[j])) for i, j in itertools.combinations(range(len(ids)), 2)]
    return record


def prompt_records(
    study: Study, prompts: list[Prompt], annotator: AbstractBaseUser | None = None
) -> Iterator[tuple[Prompt, dict]]:
    """(prompt, record) for each of these prompts and each annotator who labelled it (or only `annotator`)."""
    labels = span_labels(study)
    annotations = annotations_with_parts(study).filter(query__prompt__in=prompts)
    if annotator is not None:
        annotations = annotations.filter(annotator=annotator)
    grouped: dict[int, dict[int, list[Annotation]]] = defaultdict(lambda: defaultdict(list))
    for annotation in annotations:
        grouped[annotation.query.prompt_id][annotation.annotator_id].append(annotation)
    responses: dict[int, list[Response]] = defaultdict(list)
    for response in Response.objects.filter(prompt__in=prompts).order_by("prompt_id", "index"):
        responses[response.prompt_id].append(response)
    for prompt in sorted(prompts, key=lambda p: p.pk):
        by_annotator = grouped.get(prompt.pk, {})
        for annotator_id in sorted(by_annotator):
            yield prompt, record_build(prompt, responses[prompt.pk], by_annotator[annotator_id], labels)


def fgrlhf_records(study: Study) -> Iterator[dict]:
    """Every (prompt, annotator) with current labels as a qa_feedback record, a chunk of prompts at a time."""
    prompt_ids = list(
        annotations_with_parts(study).order_by("query__prompt_id").values_list("query__prompt_id", flat=True).distinct()
    )
    for start in range(0, len(prompt_ids), PROMPT_CHUNK):
        prompts = list(Prompt.objects.filter(pk__in=prompt_ids[start : start + PROMPT_CHUNK]))
        for _, record in prompt_records(study, prompts):
            yield record


def fgrlhf_count(study: Study) -> int:
    """How many records fgrlhf_records yields: one per prompt and annotator with current labels."""
    return annotations_with_parts(study).order_by().values("query__prompt_id", "annotator_id").distinct().count()
