"""Reviewing answers: a rejection is kept, marked, stops counting, and returns the query to the pool."""

import pytest

from annotate.errors import Conflict, InvalidInput
from annotate.models import Annotation, Query, Review
from annotate.selectors.queues import recent_answers
from annotate.selectors.reviews import queries_to_review, query_answers, reviews_for_annotator
from annotate.selectors.training_data import preference_pairs
from annotate.services.assignments import assignment_next
from annotate.services.exports import export_build
from annotate.services.feedback import annotation_revise, annotation_submit
from annotate.services.reviews import annotation_review
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return {"ana": UserFactory(username="ana"), "bo": UserFactory(username="bo"), "rev": UserFactory(username="rev")}


@pytest.fixture
def study(people):
    study = make_study(annotators=[people["ana"], people["bo"]], feedback_kinds=["pairwise"], overlap=1)
    membership_add(study=study, username="rev", role="reviewer")
    make_items(study, n_prompts=1)  # one pairwise query
    return study


def answer(study, annotator, choice="a") -> Annotation:
    assignment = assignment_next(study=study, annotator=annotator)
    annotation, _ = annotation_submit(
        query=assignment.query,
        annotator=annotator,
        client_key=f"k-{assignment.pk}",
        answer={"choice": choice, "strength": 2} if choice in "ab" else {"choice": choice},
    )
    return annotation


def rows(study, format):
    return list(export_build(study=study, format=format).rows)


def test_a_rejected_answer_returns_its_query_to_the_pool_for_another_annotator(study, people):
    first = answer(study, people["ana"])
    assert assignment_next(study=study, annotator=people["bo"]) is None  # overlap 1: the query is full
    review, created = annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected", note="You skipped B.")
    assert created and Query.objects.get(pk=first.query_id).label_count == 0
    again = assignment_next(study=study, annotator=people["bo"])
    assert again is not None and again.query_id == first.query_id
    assert Annotation.objects.get(pk=first.pk).rejected_by_id == review.pk  # kept, marked


def test_a_rejected_answer_stays_in_raw_exports_marked_and_leaves_training_and_current_exports(study, people):
    first = answer(study, people["ana"])
    assert len(preference_pairs(study)) == 1 and len(rows(study, "trl")) == 1
    annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected", note="wrong")
    assert preference_pairs(study) == [] and rows(study, "trl") == []
    (raw,) = rows(study, "raw")
    assert raw["annotation_id"] == first.pk and raw["current"] is False
    assert raw["rejected"]["note"] == "wrong"
    assert export_build(study=study, format="raw").counts["superseded"] == 1


def test_rejecting_twice_counts_once(study, people):
    first = answer(study, people["ana"])
    review, _ = annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected")
    bo_answer = answer(study, people["bo"])  # the query is answered again, label_count back to 1
    again, created = annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected")
    assert not created and again == review
    assert Query.objects.get(pk=first.query_id).label_count == 1
    assert [a.pk for a in query_answers(Query.objects.get(pk=first.query_id))] == [bo_answer.pk]


def test_accepting_records_the_verdict_and_keeps_the_label(study, people):
    first = answer(study, people["ana"])
    review, created = annotation_review(annotation=first, reviewer=people["rev"], verdict="accepted", note="Nice")
    assert created and review.verdict == "accepted" and Review.objects.count() == 1
    assert Query.objects.get(pk=first.query_id).label_count == 1 and len(preference_pairs(study)) == 1


def test_an_accepted_answer_may_still_be_rejected_but_a_rejection_is_final(study, people):
    first = answer(study, people["ana"])
    annotation_review(annotation=first, reviewer=people["rev"], verdict="accepted")
    annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected")
    assert Query.objects.get(pk=first.query_id).label_count == 0
    with pytest.raises(Conflict, match="final"):
        annotation_review(annotation=first, reviewer=people["rev"], verdict="accepted")


def test_the_annotator_sees_the_note_and_can_no_longer_change_a_rejected_answer(study, people):
    first = answer(study, people["ana"])
    annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected", note="Read the guidelines on ties.")
    assert [r.note for r in reviews_for_annotator(study=study, annotator=people["ana"])] == ["Read the guidelines on ties."]
    assert list(reviews_for_annotator(study=study, annotator=people["bo"])) == []
    assert first.pk not in recent_answers(study=study, annotator=people["ana"]).values_list("pk", flat=True)
    with pytest.raises(Conflict):
        annotation_revise(annotation=first, annotator=people["ana"], client_key="r", answer={"choice": "b", "strength": 1})


def test_a_superseded_answer_is_not_reviewed_its_correction_is(study, people):
    first = answer(study, people["ana"])
    annotation_revise(annotation=first, annotator=people["ana"], client_key="r", answer={"choice": "b", "strength": 1})
    with pytest.raises(Conflict, match="review annotation"):
        annotation_review(annotation=first, reviewer=people["rev"], verdict="rejected")
    assert Query.objects.get(pk=first.query_id).label_count == 1


@pytest.mark.parametrize(("body", "field"), [({"verdict": "maybe"}, "verdict"), ({"verdict": "accepted", "note": 3}, "note")])
def test_a_bad_verdict_or_note_is_refused_naming_it_and_stores_nothing(study, people, body, field):
    first = answer(study, people["ana"])
    with pytest.raises(InvalidInput) as refused:
        annotation_review(annotation=first, reviewer=people["rev"], **body)
    assert refused.value.field == field and Review.objects.count() == 0


def test_split_queries_come_first_in_the_review_list(people):
    study = make_study(annotators=[people["ana"], people["bo"]], feedback_kinds=["pairwise"], overlap=2)
    make_items(study, n_prompts=2)
    # tie and both-bad read the same whatever order the responses were shown in
    for user, choices in ((people["ana"], ["tie", "tie"]), (people["bo"], ["tie", "both_bad"])):
        for choice in choices:
            answer(study, user, choice)
    listed = list(queries_to_review(study))
    assert [q.choices for q in listed] == [2, 1] and all(q.answers == 2 for q in listed)
