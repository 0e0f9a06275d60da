"""The annotator's workspace: one query at a time, answered from the keyboard, swapped in by htmx."""

from __future__ import annotations

import string

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate import access
from annotate.errors import InvalidInput, NotFound, PreflabError
from annotate.models import Assignment, Query, Study
from annotate.selectors.queues import annotator_progress
from annotate.services.assignments import assignment_next, assignment_skip
from annotate.services.feedback import annotation_submit_pairwise
from annotate.views.errors import is_htmx, page
from annotate.views.nav import with_perms

CHOICES = [
    ("a", "A is better", "1"),
    ("b", "B is better", "2"),
    ("tie", "Tie", "3"),
    ("both_bad", "Both bad", "4"),
]
STRENGTHS = [(1, "Slightly", "q"), (2, "Clearly", "w"), (3, "Much", "e")]
DEFAULT_STRENGTH = 2
ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


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


def panel_context(study: Study, user, *, error: str | None = None, notice: str | None = None) -> dict:
    """Everything the workspace panel shows: the current (or newly claimed) assignment and progress."""
    assignment = assignment_next(study=study, annotator=user)
    context = {
        "study": study,
        "assignment": assignment,
        "progress": annotator_progress(study=study, annotator=user),
        "error": error,
        "notice": notice,
        "choices": CHOICES,
        "strengths": STRENGTHS,
        "default_strength": DEFAULT_STRENGTH,
    }
    if assignment is not None:
        query = Query.objects.select_related("prompt").get(pk=assignment.query_id)
        assignment.query = query
        context.update(
            query=query,
            turns=[
                {
                    "role": m.get("role", ""),
                    "label": ROLE_LABELS.get(m.get("role"), m.get("role", "")),
                    "content": m.get("content", ""),
                }
                for m in query.prompt.messages
            ],
            shown=shown_responses(assignment),
            client_key=client_key_for(assignment),
        )
    return context


@require_GET
@page
def workspace(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    context = panel_context(study, request.user)
    # Open the guidelines for someone who has not answered anything yet.
    context["guidelines_open"] = context["progress"]["done"] == 0
    return render(request, "annotate/workspace.html", context)


def fetch_query(request: HttpRequest, study: Study, query_id: int) -> Query:
    query = access.get_query_for_annotator(request.user, query_id)
    if query.study_id != study.pk:
        raise NotFound(f"No query {query_id}.")
    return query


def parse_strength(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_STRENGTH
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"strength must be 1, 2 or 3, not {raw!r}.", field="strength") from None


def after_action(request: HttpRequest, study: Study, *, error: str | None, notice: str) -> HttpResponse:
    """htmx gets the next panel (or the same one with the error); a plain form post is redirected back."""
    if is_htmx(request):
        context = panel_context(study, request.user, error=error, notice=None if error else notice)
        return render(request, "annotate/workspace.html#workspace-panel", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("workspace", study_id=study.pk)


@require_POST
@page
def workspace_submit(request: HttpRequest, study_id: int, query_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "annotate"))
    query = fetch_query(request, study, query_id)
    error = None
    try:
        annotation_submit_pairwise(
            query=query,
            annotator=request.user,
            choice=request.POST.get("choice", ""),
            strength=parse_strength(request.POST.get("strength")),
            client_key=request.POST.get("client_key", ""),
        )
    except PreflabError as exc:
        error = exc.message
    return after_action(request, study, error=error, notice="Saved. Here is the next query.")


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
    return after_action(request, study, error=error, notice="Skipped. Here is the next query.")
