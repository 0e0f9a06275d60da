"""Reads for review: a query's answers side by side, the queries worth reviewing, an annotator's notes."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q

from annotate.models import Annotation, Query, Review, Study
from annotate.models.feedback import current_annotation, study_data_query
from annotate.models.studies import Role
from annotate.selectors.labels import annotator_pseudonym, answer_of

CURRENT = current_annotation()


def query_answers(query: Query):
    """The query's current answers, oldest first, with their parts and reviews loaded."""
    return (
        Annotation.objects.filter(CURRENT, query=query)
        .select_related("query", "annotator", "pairwise", "ranking", "assignment")
        .prefetch_related("spans", "critiques", "ratings", "reviews")
    )


def queries_to_review(study: Study, limit: int = 200):
    """The study's answered queries, those with the most distinct current answers first (a split is
    what a reviewer should look at), then the most answered."""
    current = current_annotation("annotations__")
    return (
        Query.objects.filter(study_data_query(study))
        .annotate(
            answers=Count("annotations", filter=current),
            choices=Count("annotations__pairwise__choice", filter=current, distinct=True),
        )
        .filter(answers__gt=0)
        .select_related("prompt")
        .order_by("-choices", "-answers", "id")[:limit]
    )


def reviews_for_annotator(*, study: Study, annotator: AbstractBaseUser):
    """Reviews of the annotator's answers in the study that carry a note or a rejection, newest first."""
    return (
        Review.objects.filter(annotation__query__study=study, annotation__annotator=annotator)
        .filter(Q(verdict="rejected") | ~Q(note=""))
        .select_related("annotation")
        .order_by("-id")
    )


def reviewed_answer(annotation: Annotation) -> dict:
    """An answer as a reviewer compares it with the others: a/b in the query's own order (a = its
    first response), not as this annotator was shown them, so equal answers read the same."""
    answer = answer_of(annotation)
    vote = getattr(annotation, "pairwise", None)  # a missing reverse one-to-one raises an AttributeError subclass
    if vote is not None:
        answer["choice"] = vote.choice
    return answer


def answerer_name(annotation: Annotation, viewer_role: str) -> str:
    """Who gave an answer, as a reviewer may know it: managers see the username, reviewers the
    pseudonym that exports use (enough to spot one annotator's pattern, not to single them out)."""
    if viewer_role == Role.MANAGER:
        return annotation.annotator.get_username()
    return annotator_pseudonym(annotation.annotator_id)
