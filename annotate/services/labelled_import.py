"""Storing records that come with their labels (TRL, Label Studio, Argilla): prompts, responses, queries, annotations.

Each format's module turns its file into `LabelledRecord`s (checked, with errors naming the
record and field); `labelled_records_store` writes them in one statement per table. A label is
one annotation by one annotator on one query (the responses it showed, by index in the record),
with its parts. The queries are created labelled (`label_count` = their labels); the study's own
kinds add the unlabelled queries a record's responses make, as a plain import would.

Idempotent: a record whose external id the study has already is skipped if its prompt, its
responses and its labels are the same (labels compared by their client_key, a digest of the
label's content), and refused naming the record otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from annotate.errors import InvalidInput
from annotate.models import (
    Annotation,
    CritiquePart,
    PairwiseChoice,
    Prompt,
    Query,
    QueryResponse,
    RankingPart,
    RatingPart,
    Response,
    SpanPart,
    Study,
)
from annotate.models.items import QueryKind
from annotate.models.studies import FeedbackKind
from annotate.numbers import JsonNumberError, is_int, json_loads
from annotate.rows import analyze_after_commit, insert_rows
from annotate.services.import_guess import first_record, nothing_imported
from annotate.services.items import MAX_RANKING, MIN_RANKING, ImportResult, first_priority, pair_key, plan_queries
from annotate.services.study_status import refuse_if_archived

IMPORTED_USERNAME = "imported"
MAX_ERRORS_REPORTED = 20
KIND_ORDER = [kind.value for kind in FeedbackKind]
# Words a tool's choice may use for a pairwise answer (any case), beside the name of a response.
CHOICE_WORDS = {"left": "a", "a": "a", "right": "b", "b": "b", "tie": "tie", "both bad": "both_bad", "both_bad": "both_bad"}


@dataclass
class ImportedLabel:
    """One annotation to store: who gave it, the record's responses it showed (indices), and its parts.

    Parts name responses by index in the record: spans {response, start, end, category, note,
    metadata}, critiques {response, critique, revision}, ratings {response, aspect, value};
    `ranking` is groups of indices, best first.
    """

    annotator: str
    shown: tuple[int, ...]
    name: str  # unique within the record and annotator; part of the client_key
    choice: str | None = None  # a, b, tie or both_bad, as shown
    strength: int = 2  # of an a or b choice
    ranking: list[list[int]] | None = None
    spans: list[dict] = field(default_factory=list)
    critiques: list[dict] = field(default_factory=list)
    ratings: list[dict] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.choice is not None:
            return QueryKind.PAIRWISE
        if self.ranking is not None:
            return QueryKind.RANKING
        return QueryKind.SINGLE

    @property
    def asks(self) -> list[str]:
        given = {
            FeedbackKind.PAIRWISE: self.choice is not None,
            FeedbackKind.RANKING: self.ranking is not None,
            FeedbackKind.SPANS: bool(self.spans),
            FeedbackKind.CRITIQUE: bool(self.critiques),
            FeedbackKind.RATINGS: bool(self.ratings),
        }
        return [kind.value for kind, present in given.items() if present]

    def digest(self) -> str:
        content = [self.shown, self.choice, self.strength, self.ranking, self.spans, self.critiques, self.ratings]
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class LabelledRecord:
    where: str  # "line 3", "task 12 (array index 0)": how errors name it
    external_id: str
    messages: list[dict]
    responses: list[str]
    metadata: dict
    labels: list[ImportedLabel]
    source: str  # Response.source: the format it came from


@dataclass
class NewQuery:
    """A query to create for a record: labelled by `label_count` of its labels, or none (the study's own kinds)."""

    prompt_id: int
    kind: str
    asks: list[str]
    response_ids: tuple[int, ...]
    label_count: int = 0


@dataclass
class LabelledImportResult(ImportResult):
    """An import's counts, plus the records read, the labels stored and whether the study was configured."""

    records: int = 0
    annotations_created: int = 0
    study_configured: bool = False


def content_id(prefix: str, *parts) -> str:
    """An external id for a record without one: its content, so that importing it again is a no-op."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"{prefix}:{digest[:32]}"


def record_errors(items: Iterable, parse: Callable, *, format: str, sample: Callable[[], object]) -> list:
    """parse(item) for every item, all checked before anything is stored; one error naming every bad record.

    `parse` returns a LabelledRecord or raises InvalidInput naming the record and field. Two
    records with one external id are an error too. `sample()` gives the file's first record, for
    the hint of which format the file looks like.
    """
    records, errors, seen = [], [], {}
    for item in items:
        try:
            record = parse(item)
        except InvalidInput as exc:
            errors.append(exc)
        else:
            if record.external_id in seen:
                errors.append(InvalidInput(f"{record.where}: has the same id as {seen[record.external_id]}.", field="id"))
            seen.setdefault(record.external_id, record.where)
            records.append(record)
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise nothing_imported(
            [e.message for e in errors],
            format=format,
            first=sample(),
            field=errors[0].field,
            stopped=len(errors) >= MAX_ERRORS_REPORTED,
        )
    if not records:
        raise nothing_imported(["The file has no records."], format=format, first=sample())
    return records


def fail(where: str, field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{where}, field {field}: {problem}", field=field)


def jsonl_items(data: bytes) -> list[tuple[str, object]]:
    """(where, value) per non-blank line; a line that is not JSON is an InvalidInput in its place."""
    rows = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"line {number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rows.append((where, InvalidInput(f"{where}: is not valid UTF-8.")))
            continue
        if not text.strip():
            continue
        try:
            rows.append((where, json_loads(text)))
        except json.JSONDecodeError as exc:
            rows.append((where, InvalidInput(f"{where}: is not valid JSON ({exc.msg} at column {exc.colno}).")))
        except JsonNumberError as exc:
            rows.append((where, InvalidInput(f"{where}: {exc}.")))
    return rows


def file_items(data: bytes) -> list[tuple[str, object]]:
    """(where, value) per record of a JSON array ("record 3", counting from 1) or of JSON lines ("line 3")."""
    text = data.decode("utf-8-sig", errors="replace").lstrip()
    if not text.startswith("["):
        return jsonl_items(data)
    try:
        values = json_loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"Nothing was imported: the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
        ) from None
    except JsonNumberError as exc:
        raise InvalidInput(f"Nothing was imported: the file {exc}.") from None
    return [(f"record {number}", value) for number, value in enumerate(values, start=1)]


def each_item(parse: Callable) -> Callable:
    """parse(value, where) for a (where, value) of file_items, raising the line's own error where it was not JSON."""

    def parse_item(item: tuple[str, object]):
        where, value = item
        if isinstance(value, InvalidInput):
            raise value
        return parse(value, where)

    return parse_item


def responses_checked(texts: list[str], where: str, field: str, shape: str) -> list[str]:
    """A record's responses: at least one, and no text twice (a query shows distinct responses)."""
    if not texts:
        raise fail(where, field, f"has no responses: give {shape}.")
    if len(set(texts)) != len(texts):
        raise fail(where, field, "the same response text appears twice.")
    return texts


def span_part(text: str, index: int, category: str, start, end, where: str, at: str, quote=None) -> dict:
    """A span on response `index` (whose text is `text`): offsets in characters (code points), checked against
    the quoted text where the file gives it."""
    if not (is_int(start) and is_int(end) and 0 <= start < end <= len(text)):
        raise fail(
            where,
            at,
            f"start {start!r} and end {end!r} must satisfy 0 <= start < end <= {len(text)}, the response's length "
            "in characters (code points).",
        )
    if quote is not None and text[start:end] != quote:
        raise fail(where, at, f"the text at {start}..{end} is {text[start:end]!r}, not {quote!r} as the file says.")
    return {"response": index, "start": start, "end": end, "category": category, "note": ""}


def critique_add(critiques: dict[int, dict], index: int, question: str, text: str) -> None:
    """A free-text answer on response `index`: its revision where the question's name says so, else its critique."""
    slot = "revision" if "revision" in question.casefold() else "critique"
    critiques.setdefault(index, {"response": index, "critique": "", "revision": ""})[slot] = text


def labels_of(
    annotator: str, name: str, count: int, where: str, at: str, *, choice=None, ranking=None, spans=(), critiques=(), ratings=()
) -> list[ImportedLabel]:
    """One annotator's answer on a record of `count` responses, as the labels (queries) it makes.

    A choice or ranking shows all the responses, with the per-response parts riding along; a ranking
    of two is a pairwise choice (an equal rank a tie). Without either, each response with parts is a
    single-response query of its own.
    """
    if ranking is not None and count == 2:
        choice = "tie" if len(ranking) == 1 else ("a" if ranking[0] == [0] else "b")
        ranking = None
    if choice is not None and count != 2:
        raise fail(where, at, f"a pairwise answer needs exactly two responses; this record has {count}.")
    if ranking is not None and not MIN_RANKING <= count <= MAX_RANKING:
        raise fail(
            where,
            at,
            f"a ranking needs {MIN_RANKING} to {MAX_RANKING} responses (or 2, as a pairwise choice); this record has {count}.",
        )
    parts = {"spans": list(spans), "critiques": list(critiques), "ratings": list(ratings)}
    if choice is not None or ranking is not None:
        return [ImportedLabel(annotator=annotator, shown=tuple(range(count)), name=name, choice=choice, ranking=ranking, **parts)]
    labels = []
    for index in range(count):
        mine = {key: [p for p in value if p["response"] == index] for key, value in parts.items()}
        if any(mine.values()):
            labels.append(ImportedLabel(annotator=annotator, shown=(index,), name=f"{name}:r{index}", **mine))
    return labels


def import_user(username: str) -> AbstractBaseUser:
    """The user imported labels are attributed to: created inactive, without a usable password.

    An existing user of that name who can log in is refused: their own labels and the imported
    ones could not be told apart.
    """
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif user.has_usable_password():
        raise InvalidInput(
            f"A user named {username!r} exists and can log in; imported labels would look like theirs. Rename that user first.",
            field="annotator",
        )
    return user


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.casefold()).strip("-_")[:64] or "x"


def lookup(items: list[dict]) -> dict[str, str]:
    """Names (a key or label, any case) to the keys of a span taxonomy or rating aspects."""
    found = {}
    for item in items or []:
        found[item["key"].casefold()] = item["key"]
        found[str(item.get("label") or item["key"]).casefold()] = item["key"]
    return found


class StudyVocabulary:
    """The study's span categories and rating aspects, as a parser maps a file's names onto them.

    An empty study learns names it lacks (they are added to its settings when the import stores);
    a study with items refuses them, naming the record and field.
    """

    def __init__(self, study: Study):
        self.study = study
        self.empty = not study.prompts.exists()
        self.categories = lookup(study.span_taxonomy)
        self.aspects = lookup(study.rating_aspects)
        self.new_categories: list[dict] = []
        self.new_aspects: list[dict] = []

    def category(self, name, where: str, at: str) -> str:
        return self._key(name, where, at, self.categories, self.new_categories, "span taxonomy", {"description": ""})

    def aspect(self, name, where: str, at: str) -> str:
        return self._key(name, where, at, self.aspects, self.new_aspects, "rating aspects", {"anchors": {}})

    def _key(self, name, where: str, at: str, known: dict, new: list, what: str, extra: dict) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"{where}, field {at}: must be non-empty text.", field=at)
        if name.casefold() in known:
            return known[name.casefold()]
        if not self.empty:
            names = ", ".join(sorted(set(known.values())))
            raise InvalidInput(f"{where}, field {at}: {name!r} is not in the study's {what} ({names}).", field=at)
        key = slug(name)
        if key in known.values():
            raise InvalidInput(f"{where}, field {at}: {name!r} and the {what} key {key!r} would collide.", field=at)
        new.append({"key": key, "label": name, **extra})
        known[name.casefold()] = known[key] = key
        return key


def in_words(names: list[str]) -> str:
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def study_configure(study: Study, kinds: Iterable[str], what: str, vocabulary: StudyVocabulary | None = None) -> bool:
    """Make an empty study ask for `kinds` (and learn the file's categories and aspects); returns whether it changed.

    A study with items must already ask for them: its existing queries were made for its kinds.
    """
    needed = [kind for kind in KIND_ORDER if kind in set(kinds)]
    current = study.feedback_kinds or [FeedbackKind.PAIRWISE.value]
    learned = vocabulary is not None and (vocabulary.new_categories or vocabulary.new_aspects)
    if not study.prompts.exists():
        set_kinds = not study.feedback_kinds or bool(set(needed) - set(current))
        if not set_kinds and not learned:
            return False
        if set_kinds:
            study.feedback_kinds = needed
        if vocabulary is not None:
            study.span_taxonomy = [*(study.span_taxonomy or []), *vocabulary.new_categories]
            study.rating_aspects = [*(study.rating_aspects or []), *vocabulary.new_aspects]
        study.save(update_fields=["feedback_kinds", "span_taxonomy", "rating_aspects"])
        return True
    missing = [kind for kind in needed if kind not in current]
    if missing:
        raise InvalidInput(
            f"Nothing was imported: this study already has items and asks for {', '.join(current)}; {what} need "
            f"{in_words(needed)}. Import into a new study (the import configures an empty one) or add "
            f"{in_words(missing)} to this one.",
            field="feedback_kinds",
        )
    return False


def client_key(study: Study, record: LabelledRecord, label: ImportedLabel) -> str:
    return (
        "import:" + hashlib.sha256(f"{study.pk}\0{record.external_id}\0{label.name}\0{label.digest()}".encode()).hexdigest()[:40]
    )


def unchanged_records(study: Study, records: list[LabelledRecord], users: dict[str, AbstractBaseUser]) -> set[str]:
    """The external ids imported before with the same prompt, responses and labels; a changed one is an error."""
    existing = {p.external_id: p for p in Prompt.objects.filter(study=study, external_id__in=[r.external_id for r in records])}
    if not existing:
        return set()
    texts: dict[int, list[str]] = defaultdict(list)
    for prompt_id, text in (
        Response.objects.filter(prompt__in=existing.values()).order_by("prompt_id", "index").values_list("prompt_id", "text")
    ):
        texts[prompt_id].append(text)
    keys = set(
        Annotation.objects.filter(query__prompt__in=existing.values(), annotator__in=users.values()).values_list(
            "client_key", flat=True
        )
    )
    for record in records:
        prompt = existing.get(record.external_id)
        if prompt is None:
            continue
        same = (
            prompt.messages == record.messages
            and texts[prompt.pk] == record.responses
            and all(client_key(study, record, label) in keys for label in record.labels)
        )
        if not same:
            raise InvalidInput(
                f"Nothing was imported. {record.where}, field id: {record.external_id!r} was imported before with a "
                "different prompt, responses or labels.",
                field="id",
            )
    return set(existing)


def labelled_file_import(
    *, study: Study, data: bytes, format: str, what: str, parse: Callable, items: list | None = None
) -> LabelledImportResult:
    """The whole of a labelled import, in the caller's atomic block: lock the study, check every record, store.

    `parse(value, where, vocabulary)` reads one record of `items` (default: the file's JSON array
    or lines); `what` names the records in messages ("Label Studio tasks").
    """
    study = Study.objects.select_for_update().get(pk=study.pk)  # one import into a study at a time
    refuse_if_archived(study, "importing", locked=True)
    vocabulary = StudyVocabulary(study)
    records = record_errors(
        file_items(data) if items is None else items,
        each_item(lambda value, where: parse(value, where, vocabulary)),
        format=format,
        sample=lambda: first_record(data),  # read only for an error's hint: a large file is parsed once
    )
    result = LabelledImportResult()
    labelled_records_store(study=study, records=records, result=result, what=what, vocabulary=vocabulary)
    return result


def labelled_records_store(
    *, study: Study, records: list[LabelledRecord], result: LabelledImportResult, what: str, vocabulary=None
) -> None:
    """Store checked records and their labels; the caller holds the study's row lock and an atomic block."""
    kinds = {kind for record in records for label in record.labels for kind in label.asks}
    result.records = len(records)
    result.study_configured = study_configure(study, kinds or [FeedbackKind.PAIRWISE.value], what, vocabulary)
    usernames = sorted({label.annotator for record in records for label in record.labels})
    users = {name: import_user(name) for name in usernames}
    skip = unchanged_records(study, records, users)
    new = [r for r in records if r.external_id not in skip]
    result.prompts_unchanged += len(records) - len(new)
    if not new:
        return
    prompt_ids = insert_rows(
        Prompt,
        ("study_id", "external_id", "messages", "metadata"),
        [(study.pk, r.external_id, r.messages, r.metadata) for r in new],
    )
    response_rows = [
        (pid, i, text, r.source) for pid, r in zip(prompt_ids, new, strict=True) for i, text in enumerate(r.responses)
    ]
    flat_ids = iter(insert_rows(Response, ("prompt_id", "index", "text", "source"), response_rows))
    ids_of = [[next(flat_ids) for _ in r.responses] for r in new]

    # One query per distinct set of shown responses and kind; its labels are its annotations.
    queries: dict[str, NewQuery] = {}
    for pid, record, ids in zip(prompt_ids, new, ids_of, strict=True):
        for label in record.labels:
            shown = tuple(ids[i] for i in label.shown)
            query = queries.setdefault(pair_key(label.kind, shown), NewQuery(pid, label.kind, [], shown))
            query.asks = [kind for kind in KIND_ORDER if kind in {*query.asks, *label.asks}]
            query.label_count += 1
        for plan in plan_queries(study.feedback_kinds, ids):
            queries.setdefault(plan.key, NewQuery(pid, plan.kind, plan.asks, plan.response_ids))
    query_ids = insert_rows(
        Query,
        ("study_id", "prompt_id", "kind", "key", "asks", "priority", "label_count"),
        [(study.pk, q.prompt_id, q.kind, key, q.asks, first_priority(study), q.label_count) for key, q in queries.items()],
    )
    query_of = dict(zip(queries, query_ids, strict=True))
    insert_rows(
        QueryResponse,
        ("query_id", "response_id", "position"),
        [(query_of[key], rid, position) for key, q in queries.items() for position, rid in enumerate(q.response_ids)],
    )
    planned = [(record, ids, label) for record, ids in zip(new, ids_of, strict=True) for label in record.labels]
    annotation_ids = insert_rows(
        Annotation,
        ("query_id", "annotator_id", "client_key"),
        [
            (
                query_of[pair_key(label.kind, tuple(ids[i] for i in label.shown))],
                users[label.annotator].pk,
                client_key(study, record, label),
            )
            for record, ids, label in planned
        ],
    )
    parts_store(planned, annotation_ids)
    result.prompts_created += len(new)
    result.responses_created += len(response_rows)
    result.queries_created += len(query_ids)
    result.annotations_created += len(annotation_ids)
    analyze_after_commit([Prompt, Response, Query, QueryResponse, Annotation], study_id=study.pk, queries_created=len(query_ids))


def parts_store(planned: list[tuple[LabelledRecord, list[int], ImportedLabel]], annotation_ids: list[int]) -> None:
    votes, even_votes, rankings, spans, critiques, ratings = [], [], [], [], [], []
    for (_, ids, label), aid in zip(planned, annotation_ids, strict=True):
        if label.choice in ("a", "b"):
            votes.append((aid, label.choice, label.choice, label.strength))
        elif label.choice is not None:
            even_votes.append((aid, label.choice, label.choice))
        if label.ranking is not None:
            rankings.append((aid, [[ids[i] for i in group] for group in label.ranking], ""))
        spans += [
            (aid, ids[s["response"]], s["start"], s["end"], s["category"], s.get("note", ""), s.get("metadata", {}))
            for s in label.spans
        ]
        critiques += [(aid, ids[c["response"]], c.get("critique", ""), c.get("revision", "")) for c in label.critiques]
        ratings += [(aid, ids[r["response"]], r["aspect"], r["value"]) for r in label.ratings]
    insert_rows(PairwiseChoice, ("annotation_id", "choice", "shown_choice", "strength"), votes)
    # A tie or both-bad says nothing of how much better: it has no strength (NULL, the column's default).
    insert_rows(PairwiseChoice, ("annotation_id", "choice", "shown_choice"), even_votes)
    insert_rows(RankingPart, ("annotation_id", "groups", "cannot_rank_reason"), rankings)
    insert_rows(SpanPart, ("annotation_id", "response_id", "start", "end", "category", "note", "metadata"), spans)
    insert_rows(CritiquePart, ("annotation_id", "response_id", "critique", "revision"), critiques)
    insert_rows(RatingPart, ("annotation_id", "response_id", "aspect", "value"), ratings)
