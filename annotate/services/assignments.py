"""Handing queries to annotators: claim and skip; an expired assignment simply stops holding its query."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.errors import Conflict, Gone, InvalidInput, NotFound, PreflabError
from annotate.models import Assignment, Query, Study
from annotate.models.assignments import ASSIGNMENT_COLUMNS, ASSIGNMENT_RETURNED, AssignmentStatus
from annotate.models.feedback import study_data_query
from annotate.models.items import PROMPT_COLUMNS, QUERY_COLUMNS
from annotate.models.studies import LoopStatus, StudyStatus
from annotate.rows import fetch_all, fetch_one
from annotate.services.gold import gold_plan
from annotate.services.study_status import NOT_SERVED, NotServed, refuse_if_archived, study_lock
from annotate.text import refuse_unstorable

MAX_SKIP_REASON = 2000


def in_round_loop(study: Study) -> bool:
    """Whether the claim serves only the study's current round: once its loop has started, it does."""
    return study.loop_status != LoopStatus.OFF


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
    in_round = {"round": study.current_round} if in_round_loop(study) else {}
    return (
        # An IN list rather than <, so that at overlap 1 the pool index is walked in claim order.
        Query.objects.filter(study_data_query(study), label_count__in=list(range(study.overlap)), **in_round)
        .annotate(live=Coalesce(Subquery(live, output_field=IntegerField()), Value(0)))
        .filter(live__lt=study.overlap - F("label_count"))
        .exclude(pk__in=mine)
    )


# The claim loop runs for every label, so its statements are written out rather than compiled by
# the ORM on each call (see annotate/rows.py); `open_queries_for` is the same rule as a queryset,
# and a test holds the two to the same answers. OPEN_TO is the rule over the query row q.
# Placeholders: study, user, now, overlap, round, quota; {label_counts} is filled from integers only,
# {not_handed} with one of the two equivalent forms below, {in_round} with IN_ROUND or nothing,
# and {served} with SERVED (and, in the claim's walk of a study with a quota, UNDER_QUOTA).
# "q.study_id = %(study)s ... AND NOT q.is_gold" is models.feedback.study_data_query written out in SQL.
OPEN_TO = """q.study_id = %(study)s
  AND q.label_count IN ({label_counts}){in_round} AND NOT q.is_gold
  AND {not_handed}
  AND (SELECT COUNT(*) FROM annotate_assignment l WHERE l.query_id = q.id AND l.status = 'active' AND l.expires_at > %(now)s)
      < %(overlap)s - q.label_count{served}"""
# In a round loop only the current round's queries are served: the next round is not chosen yet,
# and an earlier one that a manager ended is closed.
IN_ROUND = "\n  AND q.round = %(round)s"
# A gold query (services.gold) is open to everyone who has not had it, in any round, whatever its labels.
GOLD_OPEN_TO = "q.study_id = %(study)s AND q.is_gold AND {not_handed}{served}"
# What the claim adds to the pool's rule: the study is active (services.study_status), read from its
# row in the same statement, so a pause takes effect at the next claim even for a study object
# loaded before it. Outside `open_queries_for`, which also counts what is left for progress bars.
SERVED = "\n  AND EXISTS (SELECT 1 FROM annotate_study s WHERE s.id = %(study)s AND s.status = 'active')"
# An annotator's queries towards the study's quota: those answered, and any they hold. Skipped
# queries and gold queries do not count ("dq.study_id ... AND NOT dq.is_gold": study_data_query, in SQL).
QUOTA_USED = """SELECT COUNT(*) FROM annotate_assignment d JOIN annotate_query dq ON dq.id = d.query_id
  WHERE d.annotator_id = %(user)s AND dq.study_id = %(study)s AND NOT dq.is_gold
  AND (d.status = 'submitted' OR (d.status = 'active' AND d.expires_at > %(now)s))"""
# Uncorrelated with q: PostgreSQL counts once per statement, not per candidate query. Only the walk
# counts (a fraction of a millisecond per 300 answers); the check before assigning does not repeat
# it, as neither could see a claim of the same annotator's that is not committed yet.
UNDER_QUOTA = f"\n  AND ({QUOTA_USED}) < %(quota)s"
# Walking the pool: the user's queries are read once into a hash, as in open_queries_for. The
# planner cannot turn this into a join, so stale statistics (a new study, a new annotator) cannot
# make it rescan the user's assignments for every candidate, as NOT EXISTS did: 330 ms a claim.
NOT_HANDED_IN_WALK = (
    "q.id NOT IN (SELECT a.query_id FROM annotate_assignment a WHERE a.annotator_id = %(user)s AND a.status <> 'expired')"
)
# Checking the one query claimed: a probe of the (query, annotator) index.
NOT_HANDED_IN_CHECK = (
    "NOT EXISTS (SELECT 1 FROM annotate_assignment a "
    "WHERE a.query_id = q.id AND a.annotator_id = %(user)s AND a.status <> 'expired')"
)


def claim_params(study: Study, annotator: AbstractBaseUser, now) -> dict:
    return {
        "study": study.pk,
        "user": annotator.pk,
        "now": connection.ops.adapt_datetimefield_value(now),
        "overlap": study.overlap,
        "round": study.current_round,
        "quota": study.annotator_quota or 0,
    }


def open_to_sql(study: Study, *, walk: bool, gold: bool = False) -> str:
    """The rule for the claim's walk of the pool (`walk`) or for its check of the one query claimed."""
    not_handed = NOT_HANDED_IN_WALK if walk else NOT_HANDED_IN_CHECK
    served = SERVED + (UNDER_QUOTA if walk and study.annotator_quota else "")
    if gold:
        return GOLD_OPEN_TO.format(not_handed=not_handed, served=served)
    return OPEN_TO.format(
        label_counts=", ".join(str(int(n)) for n in range(study.overlap)),
        in_round=IN_ROUND if in_round_loop(study) else "",
        not_handed=not_handed,
        served=served,
    )


def quota_used(*, study: Study, annotator: AbstractBaseUser) -> int:
    """How many of the study's quota the annotator has used: real queries answered or held now (QUOTA_USED)."""
    return fetch_one(QUOTA_USED, claim_params(study, annotator, timezone.now()))[0]


def nothing_served_because(*, study: Study, annotator: AbstractBaseUser) -> NotServed | None:
    """Why the claim serves this annotator nothing other than an empty pool: the study's status or their quota.

    For the workspace and the API to say so once the claim returned nothing; None when neither applies.
    """
    if study.status in NOT_SERVED:
        return NOT_SERVED[study.status]
    quota = study.annotator_quota
    if quota and quota_used(study=study, annotator=annotator) >= quota:
        answered = f"{quota} answered quer{'y' if quota == 1 else 'ies'}"
        return NotServed("You reached your quota", f"You reached this study's quota of {answered}; thank you.")
    return None


def claim_query(
    *,
    study: Study,
    annotator: AbstractBaseUser,
    now,
    passed: Sequence[int] = (),
    gold: bool = False,
    skip_locked: bool = True,
) -> tuple[Query, int] | None:
    """Lock the first open query for this annotator; return it (with its prompt) and its number of responses.

    Precondition: inside a transaction. The row is locked with SKIP LOCKED, so concurrent
    annotators never wait on each other; the caller must check the rule again in a fresh
    statement (`assign`), because a claim committed between this statement's snapshot and the
    lock is invisible to it (the query row itself did not change, so PostgreSQL does not recheck
    it). `passed` lists queries to leave out: those whose check failed. `gold` claims from the
    gold queries instead of the pool. The lock is FOR NO KEY
    UPDATE: it excludes other claimers but not the foreign-key checks of a submit to the query.
    Without `skip_locked` it waits for a locked row instead of passing it by.
    """
    q, p = QUERY_COLUMNS, PROMPT_COLUMNS
    lock = ""
    if connection.features.has_select_for_update_skip_locked:
        lock = "FOR NO KEY UPDATE OF q SKIP LOCKED" if skip_locked else "FOR NO KEY UPDATE OF q"
    skip = f"AND q.id NOT IN ({', '.join(str(int(i)) for i in passed)})" if passed else ""
    row = fetch_one(
        f"SELECT (SELECT COUNT(*) FROM annotate_queryresponse r WHERE r.query_id = q.id), {q.sql}, {p.sql} "
        "FROM annotate_query q JOIN annotate_prompt p ON p.id = q.prompt_id "
        f"WHERE {open_to_sql(study, walk=True, gold=gold)} {skip} "
        f"ORDER BY q.priority DESC, q.id LIMIT 1 {lock}",
        claim_params(study, annotator, now),
    )
    if row is None:
        return None
    query = q.load(row, 1)
    query.prompt = p.load(row, 1 + q.width)
    return query, row[0]


def assign(*, query: Query, size: int, study: Study, annotator: AbstractBaseUser, now, gold: bool = False) -> Assignment | None:
    """Hand the locked query (of `size` responses) to the annotator if the rule still allows it; else None.

    One statement checks and inserts, so the check sees every claim committed before it.
    """
    order = list(range(size))
    random.SystemRandom().shuffle(order)
    expires = now + timedelta(minutes=settings.PREFLAB_ASSIGNMENT_MINUTES)
    returned = ASSIGNMENT_RETURNED
    row = fetch_one(
        "INSERT INTO annotate_assignment "
        "(query_id, annotator_id, status, display_order, started_at, expires_at, finished_at, skip_reason) "
        "SELECT q.id, %(user)s, 'active', %(order)s, %(now)s, %(expires)s, NULL, '' FROM annotate_query q "
        f"WHERE q.id = %(query)s AND {open_to_sql(study, walk=False, gold=gold)} RETURNING {returned.sql}",
        {
            **claim_params(study, annotator, now),
            "query": query.pk,
            "order": Assignment._meta.get_field("display_order").get_db_prep_value(order, connection),
            "expires": connection.ops.adapt_datetimefield_value(expires),
        },
    )
    if row is None:
        return None
    assignment = returned.load(row)
    assignment.query = query
    return assignment


def held_assignments(*, study: Study, annotator: AbstractBaseUser) -> list[Assignment]:
    """The annotator's active assignments in the study, oldest first, with their queries and prompts."""
    a, q, p = ASSIGNMENT_COLUMNS, QUERY_COLUMNS, PROMPT_COLUMNS
    rows = fetch_all(
        f"SELECT {a.sql}, {q.sql}, {p.sql} FROM annotate_assignment a JOIN annotate_query q ON q.id = a.query_id "
        "JOIN annotate_prompt p ON p.id = q.prompt_id "
        "WHERE q.study_id = %s AND a.annotator_id = %s AND a.status = 'active' ORDER BY a.started_at, a.id",
        [study.pk, annotator.pk],
    )
    held = []
    for row in rows:
        assignment = a.load(row)
        assignment.query = q.load(row, a.width)
        assignment.query.prompt = p.load(row, a.width + q.width)
        held.append(assignment)
    return held


def assignment_next(*, study: Study, annotator: AbstractBaseUser, rng: random.Random | None = None) -> Assignment | None:
    """The annotator's current assignment in the study, or a newly claimed one; None when nothing is left.

    The candidate query row is locked with SKIP LOCKED, so concurrent annotators never wait on
    each other and never both take the last free slot of a query. Each try is a transaction of
    two statements (claim, then check and assign), so a lock is held as briefly as possible.
    Gold queries are mixed in as `gold_plan` says (`rng` draws; raises NotQualified for an
    annotator who failed qualification). A study that is not active serves nothing, not even the
    assignments its annotators hold (which they may still submit while it is paused); an annotator
    who reached the study's quota is served nothing new.
    """
    if study.status != StudyStatus.ACTIVE:  # the claim's statements check the row again (SERVED)
        return None
    held = held_assignments(study=study, annotator=annotator)
    now = timezone.now()
    timed_out = [a.pk for a in held if a.expires_at <= now]
    if timed_out:  # rare: mark them, so this annotator may be handed those queries again
        Assignment.objects.filter(pk__in=timed_out).update(status=AssignmentStatus.EXPIRED, finished_at=now)
    current = next((a for a in held if a.expires_at > now), None)
    if current is not None:
        return current
    plan = gold_plan(study=study, annotator=annotator, rng=rng)
    if plan != "real":
        assignment = claim_next(study=study, annotator=annotator, now=now, gold=True)
        if assignment is not None or plan == "gold_only":
            return assignment
    return claim_next(study=study, annotator=annotator, now=now, gold=False)


def claim_next(*, study: Study, annotator: AbstractBaseUser, now, gold: bool) -> Assignment | None:
    """Claim and assign the first open query (a gold one with `gold`), retrying past those taken meanwhile.

    A claim that finds nothing unlocked tries once more waiting on locked rows: a query is also
    locked while another annotator's submit to it commits, and near the end of the pool that
    query may be the only one left that this annotator may answer. Passing it by would tell them
    they are done while it still wants their label. Without SKIP LOCKED (SQLite) the first claim
    already waited, so it is not repeated.
    """
    passed: list[int] = []
    retry_locked = connection.features.has_select_for_update_skip_locked
    while True:
        with transaction.atomic():
            claimed = claim_query(study=study, annotator=annotator, now=now, passed=passed, gold=gold)
            if claimed is None and retry_locked:
                claimed = claim_query(study=study, annotator=annotator, now=now, passed=passed, gold=gold, skip_locked=False)
            if claimed is None:
                return None
            query, size = claimed
            assignment = assign(query=query, size=size, study=study, annotator=annotator, now=now, gold=gold)
        if assignment is not None:
            return assignment
        # Taken by a claim our statement could not see. Our lock on it ended with that
        # transaction, so the annotator who has it never waits for our next try to store a label.
        passed.append(query.pk)


def finish_assignment(*, query: Query, annotator: AbstractBaseUser, status: str, now, skip_reason: str = "") -> Assignment:
    """Close the caller's live assignment of this query as submitted or skipped; otherwise raise why not.

    One UPDATE takes the row lock and checks the assignment is live, so two concurrent submits
    of one query cannot both pass: the second waits, then finds it closed. The same statement
    checks that the study is not archived, under the lock `refuse_if_archived` takes (an archive
    waits for this transaction, and this waits for an archive in flight), so an answer or a skip
    costs no statement of its own for it.
    """
    returned = ASSIGNMENT_RETURNED
    row = fetch_one(
        "UPDATE annotate_assignment SET status = %(status)s, finished_at = %(now)s, skip_reason = %(reason)s "
        "WHERE query_id = %(query)s AND annotator_id = %(user)s AND status = 'active' AND expires_at > %(now)s "
        f"AND EXISTS (SELECT 1 FROM annotate_study WHERE id = %(study)s AND status <> 'archived'{study_lock()}) "
        f"RETURNING {returned.sql}",
        {
            "status": status,
            "now": connection.ops.adapt_datetimefield_value(now),
            "reason": skip_reason,
            "query": query.pk,
            "user": annotator.pk,
            "study": query.study_id,
        },
    )
    if row is None:
        refuse_if_archived(query.study, "answering a query" if status == AssignmentStatus.SUBMITTED else "skipping a query")
        raise why_not_held(query=query, annotator=annotator, now=now)
    assignment = returned.load(row)
    assignment.query = query
    return assignment


def why_not_held(*, query: Query, annotator: AbstractBaseUser, now) -> PreflabError:
    """The error for a caller with no live assignment of this query, saying what became of theirs."""
    last = Assignment.objects.filter(query=query, annotator=annotator).order_by("-started_at", "-id").first()
    if last is None:
        return NotFound(f"No query {query.pk}.")
    if last.status == AssignmentStatus.ACTIVE and last.expires_at <= now:
        return Gone(f"Your assignment of query {query.pk} expired at {last.expires_at:%H:%M:%S} UTC; ask for the next query.")
    if last.status == AssignmentStatus.EXPIRED:
        return Gone(f"Your assignment of query {query.pk} expired; ask for the next query.")
    if last.status == AssignmentStatus.SUBMITTED:
        return Conflict(f"You already answered query {query.pk}.")
    return Conflict(f"You skipped query {query.pk}.")


@transaction.atomic
def assignment_skip(*, query: Query, annotator: AbstractBaseUser, reason: str) -> Assignment:
    """Give a query back with a reason; the annotator is not asked it again."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why you skip this query.", field="reason")
    if len(reason) > MAX_SKIP_REASON:
        raise InvalidInput(f"reason is longer than {MAX_SKIP_REASON} characters ({len(reason)}).", field="reason")
    refuse_unstorable(reason, "reason")
    return finish_assignment(
        query=query, annotator=annotator, status=AssignmentStatus.SKIPPED, now=timezone.now(), skip_reason=reason
    )
