"""Reads about an annotator's queue."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from annotate.models import Annotation, Assignment, Study
from annotate.models.assignments import AssignmentStatus
from annotate.models.feedback import current_annotation
from annotate.services.assignments import open_queries_for, quota_used

# How many of an annotator's latest answers in a study they may still change (none once the
# study is archived: annotation_revise refuses, see services.study_status).
REVISABLE_ANSWERS = 10


def annotator_progress(*, study: Study, annotator: AbstractBaseUser) -> dict:
    """Done and remaining for one annotator, for the workspace's progress bar."""
    done = study.queries.filter(annotations__annotator=annotator).distinct().count()
    held = Assignment.objects.filter(
        query__study=study, annotator=annotator, status=AssignmentStatus.ACTIVE, expires_at__gt=timezone.now()
    ).count()
    remaining = open_queries_for(study, annotator).count() + held
    if study.annotator_quota:  # no more than the quota lets them answer
        remaining = min(remaining, max(study.annotator_quota - quota_used(study=study, annotator=annotator), 0) + held)
    # Skipped queries are neither done nor left; counted apart, so a skip does not just shrink the total.
    skipped = Assignment.objects.filter(query__study=study, annotator=annotator, status=AssignmentStatus.SKIPPED).count()
    return {"done": done, "remaining": remaining, "total": done + remaining, "skipped": skipped}


def recent_answers(*, study: Study, annotator: AbstractBaseUser):
    """The annotator's answers they may still change: the newest version of each of the last
    REVISABLE_ANSWERS queries they answered in the study, most recently answered first.

    Ordered by when the query was answered, not changed, so stepping back walks the queries in
    the order they came. Imported labels (no assignment) were never answered here and are left out.
    """
    return (
        Annotation.objects.filter(current_annotation(), query__study=study, annotator=annotator, assignment__isnull=False)
        .select_related("query__prompt", "assignment", "pairwise", "ranking")
        .prefetch_related("spans", "critiques", "ratings", "reviews")
        .order_by("-assignment__finished_at", "-assignment_id")[:REVISABLE_ANSWERS]
    )
