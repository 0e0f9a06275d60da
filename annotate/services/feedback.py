"""Storing annotators' answers: a pairwise choice, a ranking, spans, critiques and ratings, as the query asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput, NotFound, PreflabError
from annotate.models import Annotation, CritiquePart, Query, RankingPart, RatingPart, SpanPart
from annotate.models.assignments import AssignmentStatus
from annotate.models.feedback import ANNOTATION_RETURNED, ORDERED_CHOICES, PairwiseChoiceValue
from annotate.models.studies import MISSING_INFORMATION, FeedbackKind
from annotate.numbers import column_range, is_int, whole_number
from annotate.rows import execute, fetch_one
from annotate.selectors.queues import REVISABLE_ANSWERS, recent_answers
from annotate.services.assignments import finish_assignment
from annotate.services.rounds import round_check_complete
from annotate.services.study_status import refuse_if_archived
from annotate.text import refuse_unstorable

MAX_TEXT = 20_000
# The client's count of active time on one query: a day at most (its column holds about 24 days).
MAX_ACTIVE_MS = 24 * 3600 * 1000
ANSWER_KEYS = {
    FeedbackKind.PAIRWISE: ("choice", "strength"),
    FeedbackKind.RANKING: ("ranking", "cannot_rank"),
    FeedbackKind.SPANS: ("spans",),
    FeedbackKind.CRITIQUE: ("critiques",),
    FeedbackKind.RATINGS: ("ratings",),
}


def canonical_choice(shown_choice: str, display_order: list[int]) -> str:
    """Map a choice made on the screen (a = left) back to the query's own order (a = position 0)."""
    if shown_choice not in ("a", "b"):
        return shown_choice
    position = display_order[0 if shown_choice == "a" else 1]
    return "a" if position == 0 else "b"


@dataclass
class CheckedAnswer:
    """An answer whose every part was checked against the query; ready to store."""

    choice: str | None = None
    strength: int | None = None
    groups: list[list[int]] | None = None
    cannot_rank: str = ""
    spans: list[dict] = field(default_factory=list)
    critiques: list[dict] = field(default_factory=list)
    ratings: list[dict] = field(default_factory=list)


def revision_limit(response_text: str) -> int:
    """The longest revision of a response: MAX_TEXT, or twice the response where that is longer.

    A response may be imported at any length, and an annotator must be able to edit even a long one.
    """
    return max(MAX_TEXT, 2 * len(response_text))


def check_text(value, where: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be text.", field=where)
    refuse_unstorable(value, where)
    if len(value) > limit:
        raise InvalidInput(f"{where} is longer than {limit} characters.", field=where)
    if required and not value.strip():
        raise InvalidInput(f"{where} is empty.", field=where)
    return value


def check_items(value, where: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidInput(f"{where} must be a list of objects.", field=where)
    return value


def response_of(item: dict, where: str, responses: dict) -> int:
    response_id = item.get("response")
    if not is_int(response_id) or response_id not in responses:
        raise InvalidInput(f"{where}.response must be the id of one of this query's responses, not {response_id!r}.", field=where)
    return response_id


def check_ranking(answer: dict, responses: dict) -> tuple[list[list[int]] | None, str]:
    reason = answer.get("cannot_rank")
    if reason is not None and answer.get("ranking") is not None:
        raise InvalidInput("Give a ranking or cannot_rank with a reason, not both.", field="ranking")
    if reason is not None:
        return None, check_text(reason, "cannot_rank", required=True)
    groups = answer.get("ranking")
    if not isinstance(groups, list) or not groups or not all(isinstance(g, list) and g for g in groups):
        raise InvalidInput("ranking must be a list of non-empty groups of response ids, best first.", field="ranking")
    seen: list[int] = []
    for group in groups:
        for response_id in group:
            if not is_int(response_id) or response_id not in responses:
                raise InvalidInput(f"ranking names {response_id!r}, which is not one of this query's responses.", field="ranking")
            if response_id in seen:
                raise InvalidInput(f"ranking repeats response {response_id}.", field="ranking")
            seen.append(response_id)
    omitted = [rid for rid in responses if rid not in seen]
    if omitted:
        raise InvalidInput(f"ranking omits response(s) {', '.join(map(str, omitted))}.", field="ranking")
    return [list(g) for g in groups], ""


def check_spans(value, responses: dict, categories: set[str]) -> list[dict]:
    checked = []
    for i, item in enumerate(check_items(value, "spans")):
        where = f"spans[{i}]"
        response_id = response_of(item, where, responses)
        category = item.get("category")
        if category != MISSING_INFORMATION and category not in categories:
            known = ", ".join(sorted(categories | {MISSING_INFORMATION}))
            raise InvalidInput(
                f"{where}.category {category!r} is not in the study's taxonomy ({known}).", field=f"{where}.category"
            )
        start, end = item.get("start"), item.get("end")
        if category == MISSING_INFORMATION:
            if start is not None or end is not None:
                raise InvalidInput(
                    f"{where}: missing information is about the whole response; give no start or end.", field=where
                )
        else:
            length = len(responses[response_id])
            if not (is_int(start) and is_int(end) and 0 <= start < end <= length):
                raise InvalidInput(
                    f"{where}: start {start!r} and end {end!r} must satisfy 0 <= start < end <= {length}, "
                    "the response's length in characters (code points).",
                    field=f"{where}.end",
                )
        note = check_text(item.get("note"), f"{where}.note", required=False)
        checked.append({"response_id": response_id, "start": start, "end": end, "category": category, "note": note})
    return checked


def check_critiques(value, responses: dict) -> list[dict]:
    checked = []
    items = check_items(value, "critiques")
    if not items:
        raise InvalidInput("critiques is empty: this query asks for a critique.", field="critiques")
    for i, item in enumerate(items):
        where = f"critiques[{i}]"
        response_id = response_of(item, where, responses)
        critique = check_text(item.get("critique"), f"{where}.critique", required=True)
        revision = ""
        if "revision" in item and item["revision"] is not None:
            limit = revision_limit(responses[response_id])
            revision = check_text(item["revision"], f"{where}.revision", required=True, limit=limit)
            if revision.strip() == responses[response_id].strip():
                raise InvalidInput(
                    f"{where}.revision is the response unchanged; leave it out instead.", field=f"{where}.revision"
                )
        checked.append({"response_id": response_id, "critique": critique, "revision": revision})
    return checked


def check_ratings(value, responses: dict, aspects: list[str]) -> list[dict]:
    checked, seen = [], set()
    for i, item in enumerate(check_items(value, "ratings")):
        where = f"ratings[{i}]"
        response_id = response_of(item, where, responses)
        aspect, rating = item.get("aspect"), item.get("value")
        if aspect not in aspects:
            raise InvalidInput(
                f"{where}.aspect {aspect!r} is not one of the study's aspects ({', '.join(aspects)}).", field=where
            )
        whole_number(rating, f"{where}.value", low=1, high=5)
        if (response_id, aspect) in seen:
            raise InvalidInput(f"{where} rates {aspect} of response {response_id} twice.", field=where)
        seen.add((response_id, aspect))
        checked.append({"response_id": response_id, "aspect": aspect, "value": rating})
    missing = [(rid, a) for rid in responses for a in aspects if (rid, a) not in seen]
    if missing:
        rid, aspect = missing[0]
        raise InvalidInput(f"ratings: {aspect} of response {rid} is not rated ({len(missing)} missing).", field="ratings")
    return checked


def check_answer(query: Query, answer: dict) -> CheckedAnswer:
    """Every part the query asks for, checked; a part it does not ask for is an error, not ignored."""
    asks = query.asks or [query.kind]
    given = {key for key, value in answer.items() if value is not None}
    for kind, keys in ANSWER_KEYS.items():
        stray = given & set(keys) - ({"strength"} if kind == FeedbackKind.PAIRWISE else set())
        if kind not in asks and stray:
            raise InvalidInput(f"This query does not ask for {kind} ({', '.join(sorted(stray))} given).", field=sorted(stray)[0])
    study = query.study
    checked = CheckedAnswer()
    # A bare pairwise choice needs no response text, so the common case skips that query.
    responses = {} if asks == [FeedbackKind.PAIRWISE] else {r.pk: r.text for r in query.ordered_responses()}
    if FeedbackKind.PAIRWISE in asks:
        choice, strength = answer.get("choice"), answer.get("strength", 2)
        if choice is None:
            raise InvalidInput(f"choice is missing: give one of {', '.join(PairwiseChoiceValue.values)}.", field="choice")
        if choice not in PairwiseChoiceValue.values:
            raise InvalidInput(f"choice {choice!r} is not one of {', '.join(PairwiseChoiceValue.values)}.", field="choice")
        if not is_int(strength) or not 1 <= strength <= 3:
            raise InvalidInput(f"strength must be 1, 2 or 3, not {strength!r}.", field="strength")
        # A tie or both-bad has no "how much better": whatever strength came with it is not stored.
        checked.choice, checked.strength = choice, strength if choice in ORDERED_CHOICES else None
    if FeedbackKind.RANKING in asks:
        checked.groups, checked.cannot_rank = check_ranking(answer, responses)
    if FeedbackKind.SPANS in asks:
        checked.spans = check_spans(answer.get("spans"), responses, {c["key"] for c in study.span_taxonomy})
    if FeedbackKind.CRITIQUE in asks:
        checked.critiques = check_critiques(answer.get("critiques"), responses)
    if FeedbackKind.RATINGS in asks:
        checked.ratings = check_ratings(answer.get("ratings"), responses, [a["key"] for a in study.rating_aspects])
    return checked


def existing_annotation(*, annotator: AbstractBaseUser, query: Query, client_key: str) -> Annotation | None:
    annotation = Annotation.objects.filter(annotator=annotator, client_key=client_key).first()
    if annotation is not None and annotation.query_id != query.pk:
        raise Conflict(f"client_key {client_key!r} was already used for query {annotation.query_id}.", field="client_key")
    return annotation


def checked_client_key(client_key) -> str:
    client_key = client_key.strip() if isinstance(client_key, str) else ""
    if not client_key or len(client_key) > 100:
        raise InvalidInput("client_key must be a non-empty string of at most 100 characters.", field="client_key")
    refuse_unstorable(client_key, "client_key")
    return client_key


def check_active_ms(active_ms) -> None:
    if active_ms is not None:
        whole_number(active_ms, "active_ms", low=0, high=MAX_ACTIVE_MS)


def store_parts(annotation: Annotation, checked: CheckedAnswer, display_order: list[int]) -> None:
    """Write the checked parts of a newly inserted annotation; `display_order` maps a shown a/b back."""
    if checked.choice is not None:
        execute(
            "INSERT INTO annotate_pairwisechoice (annotation_id, choice, shown_choice, strength) VALUES (%s, %s, %s, %s)",
            [annotation.pk, canonical_choice(checked.choice, display_order), checked.choice, checked.strength],
        )
    if checked.groups is not None or checked.cannot_rank:
        RankingPart.objects.create(annotation=annotation, groups=checked.groups or [], cannot_rank_reason=checked.cannot_rank)
    if checked.spans:
        SpanPart.objects.bulk_create([SpanPart(annotation=annotation, **span) for span in checked.spans])
    if checked.critiques:
        CritiquePart.objects.bulk_create([CritiquePart(annotation=annotation, **c) for c in checked.critiques])
    if checked.ratings:
        RatingPart.objects.bulk_create([RatingPart(annotation=annotation, **r) for r in checked.ratings])


@transaction.atomic
def annotation_submit(
    *, query: Query, annotator: AbstractBaseUser, client_key: str, answer: dict, active_ms: int | None = None
) -> tuple[Annotation, bool]:
    """Store an answer to the caller's live assignment; returns (annotation, created).

    `answer` holds the parts the query asks for: choice + strength (a/b as shown on screen; a tie
    or both-bad stores no strength), ranking (groups of response ids, best first) or cannot_rank,
    spans, critiques, ratings.
    A repeat with the same client_key returns the first annotation and stores nothing.
    """
    client_key = checked_client_key(client_key)
    check_active_ms(active_ms)
    # While paused, an assignment already held may still be answered; an archived study takes nothing
    # (finish_assignment checks that in its statement).
    now = timezone.now()
    try:
        # Closed first: it locks the assignment, so a concurrent duplicate waits here, then finds it closed.
        assignment = finish_assignment(query=query, annotator=annotator, status=AssignmentStatus.SUBMITTED, now=now)
    except PreflabError:
        # A repeat of a submit that already went through finds no live assignment: answer it.
        found = existing_annotation(annotator=annotator, query=query, client_key=client_key)
        if found is not None:
            return found, False
        raise
    checked = check_answer(query, answer)  # an error rolls the closing back

    # The annotation loop's statements are written out (see annotate/rows.py); the rarer parts use the ORM.
    row = fetch_one(
        "INSERT INTO annotate_annotation "
        "(query_id, annotator_id, assignment_id, client_key, time_spent_ms, active_ms, supersedes_id, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, NULL, %s) ON CONFLICT (annotator_id, client_key) DO NOTHING "
        f"RETURNING {ANNOTATION_RETURNED.sql}",
        [
            query.pk,
            annotator.pk,
            assignment.pk,
            client_key,
            # An assignment may be held for as long as PREFLAB_ASSIGNMENT_MINUTES allows: kept in the column.
            min(int((now - assignment.started_at).total_seconds() * 1000), column_range(Annotation, "time_spent_ms")[1]),
            active_ms,
            connection.ops.adapt_datetimefield_value(now),
        ],
    )
    if row is None:  # the key names an annotation of another query (of this one, the assignment would be closed)
        existing_annotation(annotator=annotator, query=query, client_key=client_key)
        raise Conflict(f"client_key {client_key!r} was already used.", field="client_key")
    annotation = ANNOTATION_RETURNED.load(row)
    annotation.query, annotation.annotator, annotation.assignment = query, annotator, assignment
    store_parts(annotation, checked, assignment.display_order)
    execute("UPDATE annotate_query SET label_count = label_count + 1 WHERE id = %s", [query.pk])
    if query.round:  # chosen by a round: that round may be complete now (checked once the label is committed)
        transaction.on_commit(partial(round_check_complete, study_id=query.study_id, number=query.round), robust=True)
    return annotation, True


@transaction.atomic
def annotation_revise(
    *, annotation: Annotation, annotator: AbstractBaseUser, client_key: str, answer: dict, active_ms: int | None = None
) -> tuple[Annotation, bool]:
    """Change one of the annotator's recent answers: store a new annotation that supersedes it.

    The old annotation stays as it was (raw exports show it, marked); labels, training and the
    other exports read only the newest version, and the query's label count does not change.
    Only the annotator's own current answers among their last REVISABLE_ANSWERS in the study
    (see `recent_answers`) can be changed. `answer` is as for `annotation_submit`, a/b as the
    annotator was shown the query. A repeat with the same client_key returns the first change.
    """
    client_key = checked_client_key(client_key)
    check_active_ms(active_ms)
    if annotation.annotator_id != annotator.pk:
        raise NotFound(f"No annotation {annotation.pk}.")
    refuse_if_archived(annotation.query.study, "changing an answer")
    # Lock the answer being changed: of two concurrent changes to it, the second waits, then finds it superseded.
    Annotation.objects.select_for_update(of=("self",)).filter(pk=annotation.pk).values_list("pk").first()
    found = Annotation.objects.filter(annotator=annotator, client_key=client_key).first()
    if found is not None:
        if found.supersedes_id == annotation.pk:
            return found, False
        raise Conflict(f"client_key {client_key!r} was already used.", field="client_key")
    newer = Annotation.objects.filter(supersedes_id=annotation.pk).values_list("pk", flat=True).first()
    if newer is not None:
        raise Conflict(f"Annotation {annotation.pk} was already changed: change its newest version, annotation {newer}.")
    query = annotation.query
    if annotation.pk not in recent_answers(study=query.study, annotator=annotator).values_list("pk", flat=True):
        raise Conflict(
            f"Annotation {annotation.pk} is not among your last {REVISABLE_ANSWERS} answers in this study, "
            "so it can no longer be changed."
        )
    checked = check_answer(query, answer)
    revision = Annotation.objects.create(
        query=query,
        annotator=annotator,
        assignment=annotation.assignment,
        client_key=client_key,
        time_spent_ms=None,
        active_ms=active_ms,
        supersedes=annotation,
    )
    store_parts(revision, checked, annotation.assignment.display_order)
    return revision, True
