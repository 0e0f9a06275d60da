"""Handing queries to annotators: claim and skip; an expired assignment simply stops holding its query."""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.errors import Conflict, Gone, InvalidInput, NotFound
from annotate.models import Assignment, Query, Study
from annotate.models.assignments import AssignmentStatus


def open_queries_for(study: Study, user: AbstractBaseUser):
    """Queries this user has never been handed, whose labels plus live assignments are under the overlap."""
    # An assignment past its expiry no longer holds its slot, whether or not its status says so yet.
    live = (
        Assignment.objects.filter(query=OuterRef("pk"), status=AssignmentStatus.ACTIVE, expires_at__gt=timezone.now())
        .order_by()
        .values("query")
        .annotate(n=Count("id"))
        .values("n")
    )
    # NOT IN over the ids of the user's queries (in any study: no join, so no join plan to get
    # wrong), not NOT EXISTS: PostgreSQL runs it once, as a hashed subplan. As an anti-join the
    # plan hung on statistics; right after an import it was a nested loop that rescanned all the
    # user's assignments for each candidate (110 ms a claim at 2000 queries, 500 of them labelled).
    mine = Assignment.objects.filter(annotator=user).exclude(status=AssignmentStatus.EXPIRED).values("query_id")
    return (
        # An IN list rather than <, so that at overlap 1 the pool index is walked in claim order.
        Query.objects.filter(study=study, label_count__in=list(range(study.overlap)))
        .annotate(live=Coalesce(Subquery(live, output_field=IntegerField()), Value(0)))
        .filter(live__lt=study.overlap - F("label_count"))
        .exclude(pk__in=mine)
    )


# The claim is the hottest statement of the annotation loop, so it is written out once rather than
# compiled by the ORM on every call; `open_queries_for` is the same rule as a queryset, and a test
# holds the two to the same answers. Placeholders: study, user, now, overlap; {rows} and {lock}
# are filled from integers and constants only.
CLAIM_SQL = """
SELECT q.id FROM annotate_query q
WHERE q.study_id = %(study)s
  AND q.label_count IN ({label_counts})
  AND q.id NOT IN (SELECT a.query_id FROM annotate_assignment a WHERE a.annotator_id = %(user)s AND a.status <> 'expired')
  AND (SELECT COUNT(*) FROM annotate_assignment l WHERE l.query_id = q.id AND l.status = 'active' AND l.expires_at > %(now)s)
      < %(overlap)s - q.label_count
  {rows}
ORDER BY q.priority DESC, q.id
LIMIT 1 {lock}
"""


def claim_query_id(*, study: Study, annotator: AbstractBaseUser, now) -> int | None:
    """Lock and return the first open query for this annotator, or None.

    Precondition: inside a transaction. The row is locked with SKIP LOCKED, so concurrent
    annotators never wait on each other; then it is checked again, because a claim committed
    between the statement's snapshot and the lock is invisible to the statement (the row itself
    did not change, so PostgreSQL does not recheck it). Every claimer holds this lock, so a fresh
    statement sees all claims of this query.
    """
    params = {
        "study": study.pk,
        "user": annotator.pk,
        "now": connection.ops.adapt_datetimefield_value(now),
        "overlap": study.overlap,
    }
    counts = ", ".join(str(int(n)) for n in range(study.overlap))
    lock = "FOR UPDATE OF q SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    rejected: list[int] = []
    with connection.cursor() as cursor:
        while True:
            skip = f"AND q.id NOT IN ({', '.join(str(int(i)) for i in rejected)})" if rejected else ""
            cursor.execute(CLAIM_SQL.format(label_counts=counts, rows=skip, lock=lock), params)
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(CLAIM_SQL.format(label_counts=counts, rows=f"AND q.id = {int(row[0])}", lock=""), params)
            if cursor.fetchone() is not None:
                return row[0]
            rejected.append(row[0])


@transaction.atomic
def assignment_next(*, study: Study, annotator: AbstractBaseUser) -> Assignment | None:
    """The annotator's current assignment in the study, or a newly claimed one; None when nothing is left.

    The candidate query row is locked with SKIP LOCKED, so concurrent annotators never wait on
    each other and never both take the last free slot of a query.
    """
    held = list(
        Assignment.objects.select_related("query__prompt")
        .filter(query__study=study, annotator=annotator, status=AssignmentStatus.ACTIVE)
        .order_by("started_at")
    )
    now = timezone.now()
    timed_out = [a.pk for a in held if a.expires_at <= now]
    if timed_out:  # rare: mark them, so this annotator may be handed those queries again
        Assignment.objects.filter(pk__in=timed_out).update(status=AssignmentStatus.EXPIRED, finished_at=now)
    current = next((a for a in held if a.expires_at > now), None)
    if current is not None:
        return current
    query_id = claim_query_id(study=study, annotator=annotator, now=now)
    if query_id is None:
        return None
    query = Query.objects.select_related("prompt").get(pk=query_id)
    size = len(query.ordered_responses())
    order = list(range(size))
    random.SystemRandom().shuffle(order)
    return Assignment.objects.create(
        query=query,
        annotator=annotator,
        display_order=order,
        expires_at=timezone.now() + timedelta(minutes=settings.PREFLAB_ASSIGNMENT_MINUTES),
    )


def lock_active_assignment(*, query: Query, annotator: AbstractBaseUser) -> Assignment:
    """The caller's live assignment for this query, locked; otherwise an error that says why not.

    Precondition: inside a transaction.
    """
    assignment = (
        Assignment.objects.select_for_update().filter(query=query, annotator=annotator, status=AssignmentStatus.ACTIVE).first()
    )
    if assignment is None:
        last = Assignment.objects.filter(query=query, annotator=annotator).order_by("-started_at", "-id").first()
        if last is None:
            raise NotFound(f"No query {query.pk}.")
        if last.status == AssignmentStatus.EXPIRED:
            raise Gone(f"Your assignment of query {query.pk} expired; ask for the next query.")
        if last.status == AssignmentStatus.SUBMITTED:
            raise Conflict(f"You already answered query {query.pk}.")
        raise Conflict(f"You skipped query {query.pk}.")
    if assignment.expires_at <= timezone.now():
        raise Gone(
            f"Your assignment of query {query.pk} expired at {assignment.expires_at:%H:%M:%S} UTC; ask for the next query."
        )
    return assignment


@transaction.atomic
def assignment_skip(*, query: Query, annotator: AbstractBaseUser, reason: str) -> Assignment:
    """Give a query back with a reason; the annotator is not asked it again."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why you skip this query.", field="reason")
    assignment = lock_active_assignment(query=query, annotator=annotator)
    assignment.status = AssignmentStatus.SKIPPED
    assignment.skip_reason = reason[:2000]
    assignment.finished_at = timezone.now()
    assignment.save(update_fields=["status", "skip_reason", "finished_at"])
    return assignment
