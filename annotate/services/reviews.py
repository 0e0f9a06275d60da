"""Reviewers' verdicts on answers. A rejected answer is kept (raw exports show it, marked) but stops
counting as a label, so its query returns to the pool for someone else to answer (in the round
loop: into the current round, services.rounds.query_reopen_in_loop)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.errors import Conflict, InvalidInput
from annotate.models import Annotation, Review, Verdict
from annotate.rows import execute
from annotate.services.rounds import query_reopen_in_loop
from annotate.services.study_status import refuse_if_archived
from annotate.text import refuse_unstorable


@transaction.atomic
def annotation_review(*, annotation: Annotation, reviewer: AbstractBaseUser, verdict, note="") -> tuple[Review, bool]:
    """Record a verdict on a current answer; returns (review, created).

    Rejecting marks the answer rejected and takes one off its query's label count, once: the
    answer's row is locked first, so of two concurrent rejections the second waits, then finds it
    rejected and returns the first one's review (created False). The caller checked the reviewer's role.
    """
    if verdict not in Verdict.values:
        raise InvalidInput(f"verdict must be one of {', '.join(Verdict.values)}.", field="verdict")
    if not isinstance(note, str):
        raise InvalidInput("note must be text.", field="note")
    refuse_unstorable(note, "note")
    refuse_if_archived(annotation.query.study, "reviewing answers")
    locked = Annotation.objects.select_for_update(of=("self",)).filter(pk=annotation.pk)
    rejected_by_id = locked.values_list("rejected_by_id", flat=True).get()
    if rejected_by_id is not None:
        if verdict == Verdict.REJECTED:
            return Review.objects.get(pk=rejected_by_id), False
        raise Conflict(f"Annotation {annotation.pk} was rejected; a rejection is final.", field="verdict")
    newer = Annotation.objects.filter(supersedes_id=annotation.pk).values_list("pk", flat=True).first()
    if newer is not None:
        raise Conflict(f"Annotation {annotation.pk} was changed by its annotator: review annotation {newer}.")
    review = Review.objects.create(annotation_id=annotation.pk, reviewer=reviewer, verdict=verdict, note=note)
    if verdict == Verdict.REJECTED:
        Annotation.objects.filter(pk=annotation.pk).update(rejected_by=review)
        execute(
            "UPDATE annotate_query SET label_count = label_count - 1 WHERE id = %s AND label_count > 0", [annotation.query_id]
        )
        query_reopen_in_loop(query_id=annotation.query_id, study_id=annotation.query.study_id)
        annotation.rejected_by = review
    return review, True
