"""Storing annotators' answers."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput
from annotate.models import Annotation, PairwiseChoice, Query
from annotate.models.assignments import AssignmentStatus
from annotate.models.feedback import PairwiseChoiceValue
from annotate.services.assignments import lock_active_assignment


def canonical_choice(shown_choice: str, display_order: list[int]) -> str:
    """Map a choice made on the screen (a = left) back to the query's own order (a = position 0)."""
    if shown_choice not in ("a", "b"):
        return shown_choice
    position = display_order[0 if shown_choice == "a" else 1]
    return "a" if position == 0 else "b"


def existing_annotation(*, annotator: AbstractBaseUser, query: Query, client_key: str) -> Annotation | None:
    annotation = Annotation.objects.filter(annotator=annotator, client_key=client_key).first()
    if annotation is not None and annotation.query_id != query.pk:
        raise Conflict(f"client_key {client_key!r} was already used for query {annotation.query_id}.", field="client_key")
    return annotation


@transaction.atomic
def annotation_submit_pairwise(
    *,
    query: Query,
    annotator: AbstractBaseUser,
    choice: str,
    strength: int,
    client_key: str,
) -> tuple[Annotation, bool]:
    """Store a pairwise answer given in display order; returns (annotation, created).

    A repeat with the same client_key returns the first annotation and stores nothing.
    """
    client_key = (client_key or "").strip()
    if not client_key or len(client_key) > 100:
        raise InvalidInput("client_key must be a non-empty string of at most 100 characters.", field="client_key")
    if choice not in PairwiseChoiceValue.values:
        raise InvalidInput(f"choice {choice!r} is not one of {', '.join(PairwiseChoiceValue.values)}.", field="choice")
    if not isinstance(strength, int) or isinstance(strength, bool) or not 1 <= strength <= 3:
        raise InvalidInput(f"strength must be 1, 2 or 3, not {strength!r}.", field="strength")
    if query.kind != "pairwise":
        raise InvalidInput(f"Query {query.pk} is a {query.kind} query, not pairwise.", field="choice")

    found = existing_annotation(annotator=annotator, query=query, client_key=client_key)
    if found is not None:
        return found, False
    assignment = lock_active_assignment(query=query, annotator=annotator)
    # A concurrent duplicate may have committed while we waited for the lock.
    found = existing_annotation(annotator=annotator, query=query, client_key=client_key)
    if found is not None:
        return found, False

    now = timezone.now()
    annotation = Annotation.objects.create(
        query=query,
        annotator=annotator,
        assignment=assignment,
        client_key=client_key,
        time_spent_ms=int((now - assignment.started_at).total_seconds() * 1000),
    )
    PairwiseChoice.objects.create(
        annotation=annotation,
        choice=canonical_choice(choice, assignment.display_order),
        shown_choice=choice,
        strength=strength,
    )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.finished_at = now
    assignment.save(update_fields=["status", "finished_at"])
    Query.objects.filter(pk=query.pk).update(label_count=F("label_count") + 1)
    return annotation, True
