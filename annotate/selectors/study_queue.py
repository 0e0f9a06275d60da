"""The study's queue as its manager sees it: which queries are open, held, done, and where gold sits.

Every query is in exactly one state, decided in the database (one CASE over the query row), so
the counts and the list agree and neither reads query by query:

- gold: a gold query (services.gold): served beside the pool to everyone who has not had it,
  whatever its labels, so overlap does not apply;
- done: its current labels reached the study's overlap;
- held: under the overlap and handed to someone now (an active assignment not yet expired;
  with overlap > 1 it may still have room for another annotator);
- waiting: under the overlap, held by nobody, but not served while the round loop runs because
  it is not in the current round (never chosen yet, or left in a round a manager ended);
- open: under the overlap, held by nobody, and served by the claim now.

Skips are counted apart (a skipped query is not asked of that annotator again, but stays in the
queue for others).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Case, CharField, Count, Exists, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.errors import InvalidInput
from annotate.models import Assignment, Query, Study
from annotate.models.assignments import AssignmentStatus
from annotate.services.assignments import in_round_loop

# (value, label, what it means) in the order the page shows them.
STATES = (
    ("open", "Open", "under the overlap, held by nobody, served now"),
    ("held", "Held", "handed to an annotator whose assignment has not expired"),
    ("done", "Done", "reached the overlap"),
    ("waiting", "Waiting", "under the overlap but outside the current round, so not served while the loop runs"),
    ("gold", "Gold", "gold questions, served to everyone outside rounds and overlap"),
)
STATE_NAMES = tuple(value for value, _, _ in STATES)
PAGE_SIZE = 50


def live_holds(now):
    """Assignments that hold their query at `now` (the claim's rule: active and not yet expired)."""
    return Assignment.objects.filter(status=AssignmentStatus.ACTIVE, expires_at__gt=now)


def with_state(study: Study, now) -> QuerySet[Query]:
    """The study's queries, each annotated with `state` (see the module docstring)."""
    held = Exists(live_holds(now).filter(query=OuterRef("pk")))
    whens = [
        When(is_gold=True, then=Value("gold")),
        When(label_count__gte=study.overlap, then=Value("done")),
        When(held, then=Value("held")),
    ]
    if in_round_loop(study):  # the claim serves the current round only (services.assignments)
        whens.append(When(~Q(round=study.current_round), then=Value("waiting")))
    return Query.objects.filter(study=study).annotate(state=Case(*whens, default=Value("open"), output_field=CharField()))


@dataclass
class RoundCounts:
    """One round's queries by state (round 0: not chosen by a round, or every query outside the loop)."""

    number: int
    states: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def in_order(self) -> list[int]:
        """The counts in STATES order, for a table's columns."""
        return [self.states[name] for name in STATE_NAMES]


@dataclass
class QueueCounts:
    states: dict[str, int]
    rounds: list[RoundCounts]  # by round while the loop is on; empty outside it
    skips: int  # skipped assignments in the study
    skipped_queries: int  # queries skipped at least once
    overlap: int
    current_round: int | None

    @property
    def total(self) -> int:
        return sum(self.states.values())


def queue_counts(study: Study, *, now=None) -> QueueCounts:
    """How many of the study's queries are in each state, overall and per round; two statements."""
    now = now or timezone.now()
    grouped = with_state(study, now).order_by().values("round", "state").annotate(n=Count("id"))
    states = dict.fromkeys(STATE_NAMES, 0)
    by_round: dict[int, RoundCounts] = {}
    for row in grouped:
        states[row["state"]] += row["n"]
        counts = by_round.setdefault(row["round"], RoundCounts(row["round"], dict.fromkeys(STATE_NAMES, 0)))
        counts.states[row["state"]] += row["n"]
    skipped = Assignment.objects.filter(query__study=study, status=AssignmentStatus.SKIPPED).aggregate(
        skips=Count("id"), queries=Count("query", distinct=True)
    )
    loop = in_round_loop(study)
    return QueueCounts(
        states=states,
        rounds=[by_round[n] for n in sorted(by_round)] if loop else [],
        skips=skipped["skips"],
        skipped_queries=skipped["queries"],
        overlap=study.overlap,
        current_round=study.current_round if loop else None,
    )


def queue_page(study: Study, *, state: str | None = None, page: int | str = 1, now=None, per_page: int = PAGE_SIZE) -> Page:
    """One page of the study's queries (all, or those in `state`), by id, each with its `state`, prompt,
    `skips` and `holders` (its live assignments, annotator loaded, oldest first). A constant number
    of statements whatever the page size: a count, the page, and the holders of the page's queries.

    A state that is not one of STATE_NAMES is refused naming the field; a page past the end is the last.
    """
    if state not in (None, "", *STATE_NAMES):
        raise InvalidInput(f"state must be one of {', '.join(STATE_NAMES)}, not {state!r}.", field="state")
    now = now or timezone.now()
    skips = (
        Assignment.objects.filter(query=OuterRef("pk"), status=AssignmentStatus.SKIPPED)
        .order_by()
        .values("query")
        .annotate(n=Count("id"))
        .values("n")
    )
    queries = (
        with_state(study, now)
        .annotate(skips=Coalesce(Subquery(skips, output_field=IntegerField()), Value(0)))
        .select_related("prompt")
        .prefetch_related(
            Prefetch(
                "assignments",
                queryset=live_holds(now).select_related("annotator").order_by("started_at", "id"),
                to_attr="holders",
            )
        )
        .order_by("id")
    )
    if state:
        queries = queries.filter(state=state)
    return Paginator(queries, per_page).get_page(page)
