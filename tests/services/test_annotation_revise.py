"""Changing an answer: a new annotation supersedes the old one, which is kept; labels count once."""

import pytest

from annotate.errors import Conflict, InvalidInput, NotFound
from annotate.models import Annotation, PairwiseChoice, Query
from annotate.selectors.queues import REVISABLE_ANSWERS, annotator_progress, recent_answers
from annotate.selectors.studies import study_counts
from annotate.selectors.training_data import preference_pairs
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_revise, annotation_submit
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator():
    return UserFactory(username="ana")


@pytest.fixture
def study(annotator):
    study = make_study(annotators=[annotator], feedback_kinds=["pairwise"])
    make_items(study, n_prompts=REVISABLE_ANSWERS + 2)
    return study


def answer(study, annotator, shown_choice="a", strength=2) -> Annotation:
    assignment = assignment_next(study=study, annotator=annotator)
    annotation, _ = annotation_submit(
        query=assignment.query,
        annotator=annotator,
        client_key=f"web-{assignment.pk}",
        answer={"choice": shown_choice, "strength": strength},
    )
    return annotation


def revise(annotation, annotator, key="rev-1", **answer_parts) -> tuple[Annotation, bool]:
    return annotation_revise(
        annotation=annotation, annotator=annotator, client_key=key, answer=answer_parts or {"choice": "b", "strength": 3}
    )


def test_a_change_stores_a_new_annotation_that_supersedes_the_old_which_is_kept(study, annotator):
    first = answer(study, annotator, "a", 1)
    revision, created = revise(first, annotator, choice="b", strength=3)
    assert created and revision.supersedes_id == first.pk and revision.assignment_id == first.assignment_id
    assert PairwiseChoice.objects.get(annotation=first).shown_choice == "a"  # the old answer, untouched
    vote = PairwiseChoice.objects.get(annotation=revision)
    display = first.assignment.display_order
    assert (vote.shown_choice, vote.strength) == ("b", 3)
    assert vote.choice == ("b" if display == [0, 1] else "a")  # mapped through the order the annotator saw


def test_a_change_counts_once_in_labels_progress_and_training(study, annotator):
    first = answer(study, annotator, "a")
    revise(first, annotator, choice="b")
    assert Query.objects.get(pk=first.query_id).label_count == 1
    assert study_counts(study)["labels"] == 1
    assert annotator_progress(study=study, annotator=annotator)["done"] == 1
    (pair,) = preference_pairs(study)
    responses = first.query.ordered_responses()
    shown_b = responses[first.assignment.display_order[1]]
    assert pair.chosen == shown_b.text  # what the annotator changed to, not what they first said


def test_a_repeat_with_the_same_key_returns_the_first_change(study, annotator):
    first = answer(study, annotator)
    revision, _ = revise(first, annotator, key="same")
    again, created = revise(first, annotator, key="same")
    assert (again.pk, created) == (revision.pk, False)
    assert Annotation.objects.count() == 2


def test_a_superseded_answer_cannot_be_changed_again_only_its_newest_version(study, annotator):
    first = answer(study, annotator)
    revision, _ = revise(first, annotator, key="one")
    with pytest.raises(Conflict, match=f"change its newest version, annotation {revision.pk}"):
        revise(first, annotator, key="two")
    third, created = revise(revision, annotator, key="two", choice="tie")
    assert created and third.supersedes_id == revision.pk
    assert [a.pk for a in recent_answers(study=study, annotator=annotator)] == [third.pk]


def test_only_the_last_answers_can_be_changed(study, annotator):
    answers = [answer(study, annotator) for _ in range(REVISABLE_ANSWERS + 1)]
    assert [a.pk for a in recent_answers(study=study, annotator=annotator)] == [a.pk for a in reversed(answers[1:])]
    with pytest.raises(Conflict, match=f"not among your last {REVISABLE_ANSWERS} answers"):
        revise(answers[0], annotator)
    assert revise(answers[1], annotator)[1]


def test_a_changed_answer_keeps_its_place_among_the_recent_ones(study, annotator):
    older, newer = answer(study, annotator), answer(study, annotator)
    revision, _ = revise(older, annotator)
    assert [a.pk for a in recent_answers(study=study, annotator=annotator)] == [newer.pk, revision.pk]


def test_someone_elses_answer_is_not_found(study, annotator):
    other = UserFactory(username="bo")
    first = answer(study, annotator)
    with pytest.raises(NotFound):
        revise(first, other)


def test_a_bad_change_is_refused_naming_the_field_and_stores_nothing(study, annotator):
    first = answer(study, annotator)
    with pytest.raises(InvalidInput) as refused:
        revise(first, annotator, choice="maybe")
    assert refused.value.field == "choice"
    with pytest.raises(InvalidInput) as refused:
        annotation_revise(annotation=first, annotator=annotator, client_key=" ", answer={"choice": "b"})
    assert refused.value.field == "client_key"
    assert Annotation.objects.count() == 1
