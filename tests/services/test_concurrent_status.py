"""A study's status moving while a change to the study is being stored, each thread on its own PostgreSQL connection.

A change that must not reach an archived study reads the status under a lock on the study row
that a status move waits for, and that waits for a status move in flight (study_status.py).
These tests race real transactions, so they need PostgreSQL (SQLite serialises all writers).
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from annotate.errors import Conflict
from annotate.models import Annotation, Study
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from annotate.services.study_status import study_status_change
from tests.factories import UserFactory, make_items, make_study

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks; CI runs it there"),
]


def held_open(work) -> tuple[threading.Thread, list]:
    """Run `work` in a transaction on a thread's own connection, and commit it 0.3 s after it is done.

    Returns once `work` is done (uncommitted): the thread, and a list that gets the time.monotonic()
    at which the commit starts.
    """
    in_flight, committing = threading.Event(), []

    def run():
        try:
            with transaction.atomic():
                work()
                in_flight.set()
                time.sleep(0.3)
                committing.append(time.monotonic())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    assert in_flight.wait(timeout=10)
    return thread, committing


@pytest.fixture
def held_query():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=2)
    return assignment_next(study=study, annotator=annotator), annotator


def archive(study_id: int) -> Study:
    return study_status_change(study=Study.objects.get(pk=study_id), action="archive")


def submit(assignment, annotator):
    return annotation_submit(
        query=assignment.query, annotator=annotator, client_key=f"k{assignment.pk}", answer={"choice": "a", "strength": 2}
    )


def test_archiving_waits_for_an_answer_being_stored(held_query):
    held, annotator = held_query
    thread, committing = held_open(lambda: submit(held, annotator))
    archived = archive(held.query.study_id)
    done = time.monotonic()
    thread.join(timeout=10)
    assert archived.status == "archived"
    assert committing and done > committing[0]  # the archive returned only once the answer was committing
    assert Annotation.objects.filter(query_id=held.query_id).count() == 1


def test_an_answer_stored_while_the_study_is_being_archived_waits_for_it_and_is_refused(held_query):
    held, annotator = held_query
    thread, committing = held_open(lambda: archive(held.query.study_id))
    assert held.query.study.status == "active"  # loaded before the archive, as a request would have
    with pytest.raises(Conflict, match="so answering a query is refused"):
        submit(held, annotator)
    thread.join(timeout=10)
    assert committing and not Annotation.objects.exists()


def test_of_two_status_moves_at_once_the_second_waits_and_is_told_where_the_study_stands(held_query):
    held, _ = held_query
    study_id = held.query.study_id
    thread, committing = held_open(lambda: archive(study_id))
    with pytest.raises(Conflict) as refused:
        study_status_change(study=Study.objects.get(pk=study_id), action="pause")
    thread.join(timeout=10)
    assert committing and refused.value.message == "The study is archived; only an active study can be paused."
    assert Study.objects.get(pk=study_id).status == "archived"
