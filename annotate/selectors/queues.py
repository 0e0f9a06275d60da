"""Reads about an annotator's queue."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from annotate.models import Assignment, Study
from annotate.models.assignments import AssignmentStatus
from annotate.services.assignments import open_queries_for


def annotator_progress(*, study: Study, annotator: AbstractBaseUser) -> dict:
    """Done and remaining for one annotator, for the workspace's progress bar."""
    done = study.queries.filter(annotations__annotator=annotator).distinct().count()
    held = Assignment.objects.filter(
        query__study=study, annotator=annotator, status=AssignmentStatus.ACTIVE, expires_at__gt=timezone.now()
    ).count()
    remaining = open_queries_for(study, annotator).count() + held
    # Skipped queries are neither done nor left; counted apart, so a skip does not just shrink the total.
    skipped = Assignment.objects.filter(query__study=study, annotator=annotator, status=AssignmentStatus.SKIPPED).count()
    return {"done": done, "remaining": remaining, "total": done + remaining, "skipped": skipped}
