"""The manager's view of a study's queue: every query in one state, counted and listed in a few statements."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate.errors import InvalidInput
from annotate.models import Assignment, Query
from annotate.selectors.study_queue import queue_counts, queue_page
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def hold(query, user, *, minutes=30, status="active"):
    """An assignment of the query to the user that expires in `minutes` (negative: already past)."""
    return Assignment.objects.create(
        query=query, annotator=user, status=status, display_order=[0, 1], expires_at=timezone.now() + timedelta(minutes=minutes)
    )


@pytest.fixture
def queue():
    """Six queries at overlap 2: done, held (by bo), held once but expired, skipped once, gold (held), untouched."""
    ana, bo, cy = (UserFactory(username=name) for name in ("ana", "bo", "cy"))
    study = make_study(annotators=[ana, bo, cy], overlap=2)
    make_items(study, n_prompts=6)
    q = list(study.queries.order_by("id"))
    Query.objects.filter(pk=q[0].pk).update(label_count=2)
    Query.objects.filter(pk=q[1].pk).update(label_count=1)
    held = hold(q[1], bo)
    hold(q[2], cy, minutes=-1)  # active on paper, but past its expiry: it holds nothing
    hold(q[3], ana, status="skipped")
    Query.objects.filter(pk=q[4].pk).update(is_gold=True, gold_answer={"choice": "a"})
    hold(q[4], ana)
    return study, q, held


def states(page) -> dict[int, str]:
    return {query.pk: query.state for query in page}


def test_each_query_is_counted_in_exactly_one_state(queue):
    study, q, _ = queue
    counts = queue_counts(study)
    assert counts.states == {"open": 3, "held": 1, "done": 1, "waiting": 0, "gold": 1}
    assert (counts.skips, counts.skipped_queries, counts.total) == (1, 1, 6)
    assert counts.rounds == [] and counts.current_round is None  # no round loop
    listed = states(queue_page(study))
    assert listed == {q[0].pk: "done", q[1].pk: "held", q[2].pk: "open", q[3].pk: "open", q[4].pk: "gold", q[5].pk: "open"}


def test_a_held_query_names_who_holds_it_since_when_and_until_when(queue):
    study, q, held = queue
    [row] = queue_page(study, state="held")
    [holder] = row.holders
    assert (row.pk, holder.annotator.username, holder.started_at, holder.expires_at) == (
        q[1].pk,
        "bo",
        held.started_at,
        held.expires_at,
    )
    assert row.label_count == 1


def test_skips_are_counted_per_query_and_the_filter_lists_one_state(queue):
    study, q, _ = queue
    page = queue_page(study, state="open")
    assert [row.pk for row in page] == [q[2].pk, q[3].pk, q[5].pk]
    assert [row.skips for row in page] == [0, 1, 0]
    assert [row.pk for row in queue_page(study, state="gold")] == [q[4].pk]
    assert list(queue_page(study, state="waiting")) == []


def test_in_the_round_loop_queries_outside_the_current_round_wait_and_counts_go_by_round(queue):
    study, q, _ = queue
    Query.objects.filter(pk=q[0].pk).update(round=1)
    Query.objects.filter(pk__in=[q[1].pk, q[5].pk]).update(round=2)
    study.loop_status, study.current_round = "running", 2
    study.save()
    counts = queue_counts(study)
    assert counts.states == {"open": 1, "held": 1, "done": 1, "waiting": 2, "gold": 1}
    assert counts.current_round == 2
    assert [(r.number, {s: n for s, n in r.states.items() if n}) for r in counts.rounds] == [
        (0, {"waiting": 2, "gold": 1}),
        (1, {"done": 1}),
        (2, {"open": 1, "held": 1}),
    ]
    assert [row.pk for row in queue_page(study, state="waiting")] == [q[2].pk, q[3].pk]


def test_the_list_is_paginated_by_id(queue):
    study, q, _ = queue
    first, last = queue_page(study, per_page=4), queue_page(study, page=2, per_page=4)
    assert [row.pk for row in first] + [row.pk for row in last] == [query.pk for query in q]
    assert (first.paginator.num_pages, first.has_next(), last.has_next()) == (2, True, False)
    assert queue_page(study, page=99, per_page=4).number == 2  # past the end: the last page
    assert queue_page(study, page="x", per_page=4).number == 1


def test_an_unknown_state_is_refused_naming_the_field(queue):
    study, _, _ = queue
    with pytest.raises(InvalidInput) as refused:
        queue_page(study, state="stuck")
    assert refused.value.field == "state" and "open, held, done, waiting, gold" in refused.value.message


def statements(study) -> int:
    with CaptureQueriesContext(connection) as captured:
        queue_counts(study)
        page = queue_page(study)
        for row in page:
            [hold.annotator.username for hold in row.holders]
            row.prompt.messages  # noqa: B018
    return len(captured.captured_queries)


def test_the_statements_do_not_grow_with_the_queries_or_their_holders(queue):
    study, q, _ = queue
    before = statements(study)
    make_items(study, n_prompts=20, prefix="more")
    for query in study.queries.filter(label_count=0, is_gold=False)[:10]:
        hold(query, UserFactory())
    assert statements(study) == before <= 6
