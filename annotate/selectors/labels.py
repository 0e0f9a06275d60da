"""Reads of stored labels, shared by exports and training."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db.models import QuerySet

from annotate.models import PairwiseChoice, Study


def annotator_pseudonym(study_id: int, user_id: int) -> str:
    """A stable id for an annotator in exports that does not reveal who they are."""
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:{study_id}:{user_id}".encode()).hexdigest()
    return f"ann-{digest[:12]}"


def pairwise_votes(study: Study) -> QuerySet[PairwiseChoice]:
    """Every current pairwise vote in the study (superseded ones left out), oldest first."""
    return (
        PairwiseChoice.objects.filter(annotation__query__study=study, annotation__superseded_by__isnull=True)
        .select_related("annotation__query__prompt", "annotation__assignment")
        .prefetch_related("annotation__query__query_responses__response")
        .order_by("annotation_id")
    )


def vote_responses(vote: PairwiseChoice) -> list:
    """The vote's query responses in canonical position order (uses the prefetch)."""
    return [qr.response for qr in sorted(vote.annotation.query.query_responses.all(), key=lambda qr: qr.position)]
