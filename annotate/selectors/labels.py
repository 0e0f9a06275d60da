"""Reads of stored labels, shared by exports and training.

Every read here returns current labels only: an annotation that a correction superseded is left
out, so each dataset row comes from what the annotator last said. The one exception is asked for
by name (`annotations_with_parts(..., superseded=True)`, for the raw export). Answers to gold
queries (services.gold) are never labels: they measure annotators, so every read leaves them out.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db.models import F, Prefetch, QuerySet

from annotate.models import (
    Annotation,
    CritiquePart,
    PairwiseChoice,
    QueryResponse,
    RankingPart,
    RatingPart,
    Response,
    SpanPart,
    Study,
)
from annotate.models.feedback import study_data_query, study_label


def annotator_pseudonym(user_id: int) -> str:
    """An id for an annotator in exports and training data that does not reveal who they are.

    The same in every study of a deployment (keyed by PREFLAB_PSEUDONYM_KEY, or SECRET_KEY), so
    exports of several studies can be joined on it; without the key it cannot be traced back.
    """
    digest = hmac.new(settings.PREFLAB_PSEUDONYM_KEY.encode(), f"annotator:{user_id}".encode(), hashlib.sha256)
    return f"ann-{digest.hexdigest()[:12]}"


def query_responses(lookup: str) -> Prefetch:
    """Prefetch a query's responses by joining them to its QueryResponse rows.

    Not `...__query_responses__response`: Django 5.2 prefetches a forward foreign key with a tuple
    IN, which SQLite spells as one OR per id and refuses past about 1,000 ids.
    """
    return Prefetch(lookup, queryset=QueryResponse.objects.select_related("response"))


def pairwise_votes(study: Study) -> QuerySet[PairwiseChoice]:
    """Every current pairwise vote in the study (superseded ones left out), oldest first."""
    return (
        PairwiseChoice.objects.filter(study_label(study, "annotation__"))
        .select_related("annotation__query__prompt", "annotation__assignment")
        .prefetch_related(query_responses("annotation__query__query_responses"))
        .order_by("annotation_id")
    )


def vote_responses(vote: PairwiseChoice) -> list:
    """The vote's query responses in canonical position order (uses the prefetch)."""
    return annotation_responses(vote.annotation)


def annotation_responses(annotation: Annotation) -> list[Response]:
    """The annotation's query responses in canonical position order (uses the prefetch)."""
    return [qr.response for qr in sorted(annotation.query.query_responses.all(), key=lambda qr: qr.position)]


def rankings(study: Study) -> QuerySet[RankingPart]:
    """Every current ranking, cannot-rank answers included, oldest first."""
    return (
        RankingPart.objects.filter(study_label(study, "annotation__"))
        .select_related("annotation__query__prompt")
        .prefetch_related(query_responses("annotation__query__query_responses"))
        .order_by("annotation_id")
    )


def critiques(study: Study) -> QuerySet[CritiquePart]:
    """Every current critique with the response it is about, in the order given."""
    return (
        CritiquePart.objects.filter(study_label(study, "annotation__"))
        .select_related("annotation__query__prompt", "response")
        .order_by("annotation_id", "id")
    )


def revisions(study: Study) -> QuerySet[CritiquePart]:
    """Critiques whose revision differs from the response: each is a preference for the revision.

    An empty revision means "no rewrite"; a revision equal to the response (imported data has a
    few) prefers nothing over nothing.
    """
    return critiques(study).exclude(revision="").exclude(revision=F("response__text"))


def ratings(study: Study) -> QuerySet[RatingPart]:
    """Every current aspect rating, grouped by annotation then response (the model's ordering)."""
    return (
        RatingPart.objects.filter(study_label(study, "annotation__"))
        .select_related("annotation__query__prompt", "response")
        .order_by("annotation_id", "response_id", "aspect")
    )


def annotations_with_parts(study: Study, *, superseded: bool = False) -> QuerySet[Annotation]:
    """Every current annotation with all its parts and its query's responses loaded, oldest first.

    With `superseded`, the annotations that corrections replaced or reviewers rejected come too (for
    the raw export), each with the correction that replaced it as `superseded_by` and its `rejected_by` review.
    Spans come in the order they were given (not by offset), which the FG-RLHF round trip needs.
    Iterate with `.iterator(chunk_size=...)`: the prefetches then run once per chunk.
    """
    if superseded:
        annotations = Annotation.objects.filter(study_data_query(study, "query__")).select_related("superseded_by", "rejected_by")
    else:
        annotations = Annotation.objects.filter(study_label(study))
    return (
        annotations.select_related("query__prompt", "assignment", "pairwise", "ranking")
        .prefetch_related(
            query_responses("query__query_responses"),
            Prefetch("spans", queryset=SpanPart.objects.order_by("id")),
            "critiques",
            "ratings",
        )
        .order_by("id")
    )


def answer_of(annotation: Annotation) -> dict:
    """An annotation's parts in the shape `annotation_submit` takes, a/b as its annotator saw them.

    What an annotator changing an answer starts from (uses the parts loaded by `recent_answers`).
    A critique without a revision has no `revision` key, as when it was sent.
    """
    answer: dict = {}
    vote = getattr(annotation, "pairwise", None)  # a missing reverse one-to-one raises an AttributeError subclass
    if vote is not None:
        answer |= {"choice": vote.shown_choice, "strength": vote.strength}
    ranking = getattr(annotation, "ranking", None)
    if ranking is not None and ranking.cannot_rank_reason:
        answer["cannot_rank"] = ranking.cannot_rank_reason
    elif ranking is not None:
        answer["ranking"] = ranking.groups
    asks = annotation.query.asks or [annotation.query.kind]
    if "spans" in asks:
        answer["spans"] = [
            {"response": s.response_id, "start": s.start, "end": s.end, "category": s.category, "note": s.note}
            for s in annotation.spans.all()
        ]
    if "critique" in asks:
        answer["critiques"] = [
            {"response": c.response_id, "critique": c.critique, **({"revision": c.revision} if c.revision else {})}
            for c in annotation.critiques.all()
        ]
    if "ratings" in asks:
        answer["ratings"] = [{"response": r.response_id, "aspect": r.aspect, "value": r.value} for r in annotation.ratings.all()]
    return answer
