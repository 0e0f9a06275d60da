"""Annotators claiming and submitting at the same moment, each thread on its own PostgreSQL connection.

The claim locks its query row with SKIP LOCKED and then checks the rule again in a fresh
statement; the submit closes the assignment in one locking UPDATE. These tests race real
transactions against each other, so they need PostgreSQL (SQLite serialises all writers).
"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction
from django.db.models import F

from annotate.models import Annotation, Assignment, Query
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from tests.factories import UserFactory, make_items, make_study

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks; CI runs it there"),
]


def race(functions: list) -> list:
    """Run each function in its own thread, released together; return their results (or exceptions)."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def run(i, function):
        try:
            barrier.wait()
            results[i] = function()
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("overlap", [1, 2])
def test_annotators_racing_through_a_pool_never_exceed_the_overlap(overlap):
    people = [UserFactory() for _ in range(8)]
    study = make_study(annotators=people, overlap=overlap)
    make_items(study, n_prompts=24, n_responses=2)

    def label_until_done(person):
        answered = []
        while (assignment := assignment_next(study=study, annotator=person)) is not None:
            annotation_submit(
                query=assignment.query,
                annotator=person,
                client_key=f"{person.pk}-{assignment.pk}",
                answer={"choice": "a", "strength": 2},
            )
            answered.append(assignment.query_id)
        return answered

    results = race([lambda p=p: label_until_done(p) for p in people])
    assert not [r for r in results if isinstance(r, Exception)], results
    for answered in results:
        assert len(answered) == len(set(answered))  # nobody is asked the same query twice
    per_query = Counter(q for answered in results for q in answered)
    queries = Query.objects.filter(study=study)
    assert per_query == Counter({q.pk: overlap for q in queries})  # every query exactly `overlap` times
    assert all(q.label_count == overlap for q in queries)
    assert Annotation.objects.filter(query__study=study).count() == overlap * queries.count()
    assert not Assignment.objects.filter(query__study=study, status="active").exists()


def test_a_query_locked_by_a_submit_in_flight_is_waited_for_not_passed_by():
    """The last query an annotator may answer is locked while someone else's label for it commits;
    the claim waits for that commit rather than telling the annotator nothing is left."""
    first, second = UserFactory(), UserFactory()
    study = make_study(annotators=[first, second], overlap=2)
    make_items(study, n_prompts=1, n_responses=2)
    query = Query.objects.get(study=study)
    locked, release = threading.Event(), threading.Event()

    def submit_in_flight():
        with transaction.atomic():  # what annotation_submit's label_count update holds until it commits
            Query.objects.filter(pk=query.pk).update(label_count=F("label_count"))
            locked.set()
            release.wait(timeout=10)
        connections.close_all()

    holder = threading.Thread(target=submit_in_flight)
    holder.start()
    assert locked.wait(timeout=10)
    threading.Timer(0.3, release.set).start()
    assignment = assignment_next(study=study, annotator=second)
    holder.join(timeout=10)
    assert assignment is not None and assignment.query_id == query.pk


def test_the_last_free_slot_goes_to_exactly_one_of_many_claimers():
    people = [UserFactory() for _ in range(8)]
    study = make_study(annotators=people, overlap=1)
    make_items(study, n_prompts=1, n_responses=2)
    results = race([lambda p=p: assignment_next(study=study, annotator=p) for p in people])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r is not None for r in results) == 1
    assert Assignment.objects.filter(query__study=study, status="active").count() == 1


def test_the_same_submit_sent_four_times_at_once_stores_one_annotation():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=1)
    assignment = assignment_next(study=study, annotator=annotator)

    def submit():
        return annotation_submit(
            query=assignment.query, annotator=annotator, client_key="same", answer={"choice": "b", "strength": 3}
        )

    results = race([submit] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({annotation.pk for annotation, _ in results}) == 1
    assert Annotation.objects.count() == 1
    assert Query.objects.get(pk=assignment.query_id).label_count == 1


@pytest.mark.parametrize("same_key", [False, True])
def test_two_changes_of_one_answer_at_once_store_one_and_the_other_is_told(same_key):
    from annotate.errors import Conflict
    from annotate.services.feedback import annotation_revise

    person = UserFactory()
    study = make_study(annotators=[person])
    make_items(study, n_prompts=1)
    assignment = assignment_next(study=study, annotator=person)
    first, _ = annotation_submit(query=assignment.query, annotator=person, client_key="k", answer={"choice": "a"})
    first = Annotation.objects.select_related("query__study", "assignment").get(pk=first.pk)

    def change(key):
        return lambda: annotation_revise(annotation=first, annotator=person, client_key=key, answer={"choice": "b"})

    results = race([change("same" if same_key else "one"), change("same" if same_key else "two")])
    assert Annotation.objects.filter(supersedes=first).count() == 1
    if same_key:  # a repeat of one change: both get the one annotation, one of them as created
        assert sorted(created for _, created in results) == [False, True]
        assert results[0][0].pk == results[1][0].pk
    else:
        assert sum(isinstance(r, Conflict) for r in results) == 1, results
