"""The annotator's workspace: one query at a time, answered from the keyboard, swapped in by htmx.

A query asks for one or more kinds of feedback (`Query.asks`): a pairwise choice or a ranking,
and spans, a critique or ratings of the responses shown. The panel shows the controls for each;
one form posts them all, and `answers.answer_from_post` turns it into the service's `answer`.
"""

from __future__ import annotations

import string
from functools import partial

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate import access
from annotate.errors import InvalidInput, NotFound, PreflabError
from annotate.models import Annotation, Assignment, Query, Study
from annotate.models.studies import MISSING_INFORMATION, FeedbackKind
from annotate.selectors.labels import answer_of
from annotate.selectors.queues import REVISABLE_ANSWERS, annotator_progress, recent_answers
from annotate.selectors.reviews import reviews_for_annotator
from annotate.selectors.rounds import loop_state
from annotate.services.assignments import assignment_next, assignment_skip, in_round_loop, nothing_served_because
from annotate.services.feedback import annotation_revise, annotation_submit, revision_limit
from annotate.services.gold import NotQualified
from annotate.views.answers import (
    DEFAULT_STRENGTH,
    Draft,
    answer_from_post,
    asks_of,
    draft_from_answer,
    draft_from_post,
    friendly,
    parse_active_ms,
)
from annotate.views.errors import is_htmx, page
from annotate.views.nav import with_perms

CHOICES = [
    ("a", "A is better", "1"),
    ("b", "B is better", "2"),
    ("tie", "Tie", "3"),
    ("both_bad", "Both bad", "4"),
]
STRENGTHS = [(1, "Slightly", "q"), (2, "Clearly", "w"), (3, "Much", "e")]
# What the panel says after an answer or a skip; NEXT is added when there is a next query.
SAVED = "Saved."
ALREADY_ANSWERED = (
    "You had already answered that query, perhaps in another tab; your first answer stands and this one was not saved."
)
SKIPPED = "Skipped."
NEXT = " Here is the next query."
CHANGED = "Your answer was changed."
ALREADY_CHANGED = "That change was already saved."
BACK_TO_CURRENT = " Here is your current query again."
NOTHING_EARLIER = f"There is no earlier answer to change: you can change your last {REVISABLE_ANSWERS} in a study."
ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
SCALE = ["1", "2", "3", "4", "5"]
# Span colours, one per taxonomy entry in order; chosen to stay apart for common colour blindness.
SPAN_COLOURS = ["#d55e00", "#0072b2", "#cc79a7", "#009e73", "#e69f00", "#56b4e9", "#7a5195", "#8c6d31", "#4d4d4d"]
MISSING_COLOUR = "#6b7280"


def client_key_for(assignment: Assignment) -> str:
    """One key per assignment render, so a double submit of the same screen stores one annotation."""
    return f"web-{assignment.pk}"


def shown_responses(assignment: Assignment) -> list[dict]:
    """The query's responses left to right as this annotator sees them, lettered A, B, ..."""
    canonical = assignment.query.ordered_responses()
    return [
        {"letter": letter, "response": canonical[position]}
        for letter, position in zip(string.ascii_uppercase, assignment.display_order, strict=False)
    ]


def span_categories(study: Study) -> list[dict]:
    """The study's taxonomy with a digit key (1-9) and a colour each, for the span popover and list."""
    return [
        {
            **category,
            "digit": str(i + 1) if i < 9 else "",
            "colour": SPAN_COLOURS[i % len(SPAN_COLOURS)],
        }
        for i, category in enumerate(study.span_taxonomy)
    ]


def rating_aspects(study: Study) -> list[dict]:
    """Each aspect with its five scale points and whatever anchor text the study gives them."""
    return [
        {**aspect, "points": [{"value": n, "anchor": (aspect.get("anchors") or {}).get(n, "")} for n in SCALE]}
        for aspect in study.rating_aspects
    ]


def with_draft(shown: list[dict], draft: Draft | None, aspects: list[dict]) -> None:
    """Attach to each response what the annotator had entered for it, or the starting state."""
    for item in shown:
        rid = item["response"].pk
        item["critique"] = draft.critiques.get(rid, "") if draft else ""
        item["revision"] = draft.revisions.get(rid, item["response"].text) if draft else item["response"].text
        item["revision_limit"] = revision_limit(item["response"].text)
        rated = draft.ratings.get(rid, {}) if draft else {}
        item["aspects"] = [{**aspect, "value": rated.get(aspect["key"], "")} for aspect in aspects]


def base_context(study: Study, user, *, error: str | None, notice: str | None) -> dict:
    """What every panel shows, with or without a query: progress, and a message."""
    return {
        "study": study,
        "progress": annotator_progress(study=study, annotator=user),
        "error": error,
        "notice": notice,
        "choices": CHOICES,
        "strengths": STRENGTHS,
        "default_strength": DEFAULT_STRENGTH,
        "back_url": reverse("workspace-back", args=[study.pk]),
    }


def query_context(study: Study, assignment: Assignment, draft: Draft | None) -> dict:
    """The query of an assignment as its annotator sees it, with a draft of their answer (or none)."""
    query = assignment.query  # with its prompt
    query.study = study
    if draft is not None and draft.query_id != query.pk:
        draft = None
    asks = asks_of(query)
    shown = shown_responses(assignment)
    flags = {f"asks_{kind}": kind in asks for kind in FeedbackKind.values}
    aspects = rating_aspects(study) if flags["asks_ratings"] else []
    with_draft(shown, draft, aspects)
    first = shown[0]["response"].pk if shown else None
    return dict(
        assignment=assignment,
        query=query,
        asks=asks,
        **flags,
        pairwise_only=asks == [FeedbackKind.PAIRWISE],
        single=len(shown) == 1,
        turns=[
            {
                "role": m.get("role", ""),
                "label": ROLE_LABELS.get(m.get("role"), m.get("role", "")),
                "content": m.get("content", ""),
            }
            for m in query.prompt.messages
        ],
        shown=shown,
        draft=draft,
        strength=draft.strength if draft else DEFAULT_STRENGTH,
        categories=span_categories(study) if flags["asks_spans"] else [],
        span_last_digit=min(len(study.span_taxonomy), 9),
        missing_information=MISSING_INFORMATION,
        missing_colour=MISSING_COLOUR,
        aspects=aspects,
        critique_response=(draft.critique_response if draft and draft.critique_response else first),
        # Exact texts for the scripts: span offsets and the revision diff count characters of these,
        # and HTML parsing would turn any CR LF in the page source into LF.
        texts={str(item["response"].pk): item["response"].text for item in shown}
        if flags["asks_spans"] or flags["asks_critique"]
        else None,
    )


def panel_context(
    study: Study,
    user,
    *,
    error: str | None = None,
    notice: str | None = None,
    draft: Draft | None = None,
    then: str = NEXT,
) -> dict:
    """Everything the workspace panel shows: the current (or newly claimed) assignment and progress.

    `then` follows a notice when there is a query to show: what the annotator is looking at now.
    """
    context = base_context(study, user, error=error, notice=notice)
    try:
        assignment = assignment_next(study=study, annotator=user)
    except NotQualified as exc:  # failed the study's gold qualification: told why, served nothing
        assignment, context["not_qualified"] = None, exc.message
    context["assignment"] = assignment
    if assignment is None:
        # Paused, archived or a quota reached: said as such, not as "all done".
        context["stopped"] = None if "not_qualified" in context else nothing_served_because(study=study, annotator=user)
        # Between rounds the study is not done: the next round is being chosen (a stopped study says so instead).
        context["loop"] = loop_state(study) if in_round_loop(study) and not context["stopped"] else None
        return context
    if notice:
        context["notice"] = notice + then
    context.update(query_context(study, assignment, draft))
    context["client_key"] = client_key_for(assignment)
    context["submit_url"] = reverse("workspace-submit", args=[study.pk, assignment.query_id])
    return context


def revise_context(
    study: Study, user, annotation: Annotation, recent: list[int], *, draft: Draft | None = None, error: str | None = None
) -> dict:
    """The panel for changing one of the annotator's recent answers, their answer filled in.

    `recent` are the ids of the answers they may change, newest first; `annotation` is one of them.
    """
    assignment = annotation.assignment
    assignment.query = annotation.query
    context = base_context(study, user, error=error, notice=None)
    context.update(query_context(study, assignment, draft or draft_from_answer(annotation.query_id, answer_of(annotation))))
    position = recent.index(annotation.pk) + 1
    context.update(
        revising={"annotation": annotation, "position": position, "total": len(recent)},
        # One key per answer changed: a double submit stores one change, and the next change of
        # this query supersedes the new annotation, so it gets a key of its own.
        client_key=f"web-change-{annotation.pk}",
        submit_url=reverse("workspace-revise", args=[study.pk, annotation.pk]),
        earlier_url=f"{context['back_url']}?before={annotation.pk}" if position < len(recent) else None,
        current_url=reverse("workspace", args=[study.pk]),
    )
    return context


def show_panel(request: HttpRequest, context: dict) -> HttpResponse:
    """The panel alone for htmx, inside the whole page otherwise."""
    if is_htmx(request):
        return render(request, "annotate/workspace.html#workspace-panel", context)
    return render(request, "annotate/workspace.html", context)


# The newest review notes the workspace shows its annotator; the API lists them all.
REVIEW_NOTES_SHOWN = 5


@require_GET
@page
def workspace(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    context = panel_context(study, request.user)
    # Open the guidelines for someone who has not answered anything yet.
    context["guidelines_open"] = context["progress"]["done"] == 0
    context["review_notes"] = reviews_for_annotator(study=study, annotator=request.user)[:REVIEW_NOTES_SHOWN]
    return show_panel(request, context)


def fetch_query(request: HttpRequest, study: Study, query_id: int) -> Query:
    query = access.get_query_for_annotator(request.user, query_id)
    if query.study_id != study.pk:
        raise NotFound(f"No query {query_id}.")
    return query


def after_action(
    request: HttpRequest, study: Study, *, error: str | None, notice: str, draft: Draft | None = None, then: str = NEXT
) -> HttpResponse:
    """htmx gets the next panel (or the same one with the error); a plain form post is redirected back."""
    if is_htmx(request):
        context = panel_context(study, request.user, error=error, notice=None if error else notice, draft=draft, then=then)
        return render(request, "annotate/workspace.html#workspace-panel", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("workspace", study_id=study.pk)


def store_posted(request: HttpRequest, query: Query, store, assignment) -> tuple[bool, str | None, Draft | None]:
    """Pass the posted answer to `store` (a service, partly applied); return (created, error, draft).

    After a refusal of the answer itself, the draft is what the annotator had posted, to show again;
    `assignment()` gives the assignment whose letters name the responses in the error.
    """
    responses = query.ordered_responses()
    try:
        _, created = store(
            annotator=request.user,
            client_key=request.POST.get("client_key", ""),
            answer=answer_from_post(query, responses, request.POST),
            active_ms=parse_active_ms(request.POST.get("active_ms")),
        )
    except InvalidInput as exc:
        return True, friendly(exc.message, letters_of(assignment())), draft_from_post(query, responses, request.POST)
    except PreflabError as exc:
        return True, exc.message, None
    return created, None, None


@require_POST
@page
def workspace_submit(request: HttpRequest, study_id: int, query_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    query = fetch_query(request, study, query_id)
    query.study = study
    created, error, draft = store_posted(
        request,
        query,
        partial(annotation_submit, query=query),
        # After a refusal the assignment is still live: the submit rolled back.
        lambda: query.assignments.filter(annotator=request.user, status="active").first(),
    )
    # A repeat (another tab, or a page the browser brought back) stores nothing: the first answer stands.
    notice = SAVED if created else ALREADY_ANSWERED
    return after_action(request, study, error=error, notice=notice, draft=draft)


def letters_of(assignment: Assignment | None) -> dict[int, str]:
    """Response id to the letter the assignment shows it under (none without an assignment)."""
    if assignment is None:
        return {}
    return {item["response"].pk: item["letter"] for item in shown_responses(assignment)}


@require_POST
@page
def workspace_skip(request: HttpRequest, study_id: int, query_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    query = fetch_query(request, study, query_id)
    error = None
    try:
        assignment_skip(query=query, annotator=request.user, reason=request.POST.get("reason", ""))
    except PreflabError as exc:
        error = exc.message
    return after_action(request, study, error=error, notice=SKIPPED)


def recent_ids(study: Study, user) -> list[int]:
    return [a.pk for a in recent_answers(study=study, annotator=user).prefetch_related(None)]


@require_GET
@page
def workspace_back(request: HttpRequest, study_id: int) -> HttpResponse:
    """One of the annotator's recent answers, to change: the newest, or the one before `?before=<annotation id>`."""
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    recent = list(recent_answers(study=study, annotator=request.user))
    ids = [a.pk for a in recent]
    before = access.as_id(request.GET.get("before"))
    # An id no longer in the list (changed meanwhile, in another tab) starts again from the newest.
    position = ids.index(before) + 1 if before in ids else 0
    if position >= len(recent):
        return show_panel(request, panel_context(study, request.user, notice=NOTHING_EARLIER, then=""))
    return show_panel(request, revise_context(study, request.user, recent[position], ids))


@require_POST
@page
def workspace_revise(request: HttpRequest, study_id: int, annotation_id: int) -> HttpResponse:
    """Store a changed answer; then the annotator is back at the query they were on."""
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    annotation = access.get_annotation_for_annotator(request.user, annotation_id)
    if annotation.query.study_id != study.pk:
        raise NotFound(f"No annotation {annotation_id}.")
    query = annotation.query
    query.study = study
    created, error, draft = store_posted(
        request, query, partial(annotation_revise, annotation=annotation), lambda: annotation.assignment
    )
    if draft is not None:
        # The same answer again, as the annotator changed it, with the problem named.
        recent = recent_ids(study, request.user)
        if annotation.pk in recent:
            return show_panel(request, revise_context(study, request.user, annotation, recent, draft=draft, error=error))
    notice = CHANGED if created else ALREADY_CHANGED
    return after_action(request, study, error=error, notice=notice, then=BACK_TO_CURRENT)
