"""Review pages: the queries worth a look, and one query's answers side by side with Accept / Reject."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate import access
from annotate.errors import NotFound, PreflabError
from annotate.models.feedback import PairwiseChoiceValue
from annotate.selectors import reviews as review_selectors
from annotate.services.reviews import annotation_review
from annotate.views.errors import page
from annotate.views.nav import with_perms


def readable(answer: dict, letters: dict[int, str]) -> list[tuple[str, str]]:
    """An answer's parts as (label, text) lines, responses named by their letter (A = the query's first)."""
    lines = []
    if "choice" in answer:
        strength = f" (strength {answer['strength']})" if answer.get("strength") else ""
        lines.append(("Choice", PairwiseChoiceValue(answer["choice"]).label + strength))
    if "ranking" in answer:
        lines.append(("Ranking", " > ".join(" = ".join(letters.get(r, "?") for r in group) for group in answer["ranking"])))
    if "cannot_rank" in answer:
        lines.append(("Could not rank", answer["cannot_rank"]))
    for span in answer.get("spans", []):
        where = f"[{span['start']}, {span['end']})" if span["start"] is not None else "whole response"
        note = f": {span['note']}" if span["note"] else ""
        lines.append((f"Span in {letters.get(span['response'], '?')}", f"{span['category']} {where}{note}"))
    for critique in answer.get("critiques", []):
        lines.append((f"Critique of {letters.get(critique['response'], '?')}", critique["critique"]))
        if critique.get("revision"):
            lines.append((f"Revision of {letters.get(critique['response'], '?')}", critique["revision"]))
    for rating in answer.get("ratings", []):
        lines.append((f"{rating['aspect']} of {letters.get(rating['response'], '?')}", str(rating["value"])))
    return lines


@require_GET
@page
def review_list(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "review"))
    return render(request, "annotate/review_list.html", {"study": study, "queries": review_selectors.queries_to_review(study)})


@require_GET
@page
def review_query(request: HttpRequest, study_id: int, query_id: int) -> HttpResponse:
    query = access.get_query_for_review(request.user, query_id)
    if query.study_id != study_id:
        raise NotFound(f"No query {query_id}.")
    study = with_perms(query.study)
    responses = [qr.response for qr in query.query_responses.select_related("response").order_by("position")]
    letters = {r.pk: chr(ord("A") + i) for i, r in enumerate(responses)}
    answers = [
        {
            "annotation": a,
            "who": review_selectors.answerer_name(a, study.my_role),
            "parts": readable(review_selectors.reviewed_answer(a), letters),
            "reviews": list(a.reviews.all()),
        }
        for a in review_selectors.query_answers(query)
    ]
    context = {
        "study": study,
        "query": query,
        "responses": list(zip(letters.values(), responses, strict=True)),
        "answers": answers,
    }
    return render(request, "annotate/review_query.html", context)


@require_POST
@page
def review_submit(request: HttpRequest, study_id: int, annotation_id: int) -> HttpResponse:
    annotation = access.get_annotation_for_review(request.user, annotation_id)
    if annotation.query.study_id != study_id:
        raise NotFound(f"No annotation {annotation_id}.")
    try:
        review, _ = annotation_review(
            annotation=annotation,
            reviewer=request.user,
            verdict=request.POST.get("verdict", ""),
            note=request.POST.get("note", ""),
        )
    except PreflabError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Answer {annotation.pk} {review.verdict}.")
    return redirect("review-query", study_id=study_id, query_id=annotation.query_id)
