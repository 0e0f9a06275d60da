"""A rejection after its query's round has ended: the query is served again in the current round,
and its labels still name the round and strategy that chose it."""

import pytest

from annotate.models import Query, Round
from annotate.selectors.rounds import round_labels
from annotate.services.assignments import assignment_next
from annotate.services.dataset_exports import filters_check, selection
from annotate.services.exports import export_build
from annotate.services.feedback import annotation_submit
from annotate.services.reviews import annotation_review
from annotate.services.rounds import round_start
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def answer_all(study, annotator, commit, limit: int = 100) -> dict:
    """Answer every query the claim serves the annotator, up to `limit` (choosing a); {query id: annotation}."""
    answers = {}
    while len(answers) < limit and (assignment := assignment_next(study=study, annotator=annotator)) is not None:
        with commit(execute=True):
            answers[assignment.query_id], _ = annotation_submit(
                query=assignment.query,
                annotator=annotator,
                client_key=f"k-{assignment.pk}",
                answer={"choice": "a", "strength": 2},
            )
    return answers


@pytest.fixture
def second_round(queued_jobs, django_capture_on_commit_callbacks, tiny_encoder_dir):
    """Round 1 (2 queries) answered by ana and closed untrained; round 2 (2 queries) collecting."""
    ana, bo, rev = UserFactory(username="ana"), UserFactory(username="bo"), UserFactory(username="rev")
    study = make_study(annotators=[ana, bo], round_size=2, reward_model=str(tiny_encoder_dir), training_config={"min_pairs": 100})
    membership_add(study=study, username="rev", role="reviewer")
    make_items(study, n_prompts=6)
    round_start(study=study, by=study.created_by)
    queued_jobs.run_all()  # round 1's selection
    study.refresh_from_db()
    first = answer_all(study, ana, django_capture_on_commit_callbacks)
    assert set(Query.objects.filter(study=study, round=1).values_list("pk", flat=True)) == set(first)
    # Both labelled: round 1 closed (too few labels to train) and round 2 was opened and selected.
    assert Round.objects.get(study=study, number=1).status == "done"
    queued_jobs.run_all()  # round 2's selection
    study.refresh_from_db()
    assert study.current_round == 2
    return study, first, {"ana": ana, "bo": bo, "rev": rev}


def test_a_query_rejected_after_its_round_ended_is_served_in_the_current_round(second_round, django_capture_on_commit_callbacks):
    study, first, people = second_round
    query_id, rejected = next(iter(first.items()))
    annotation_review(annotation=rejected, reviewer=people["rev"], verdict="rejected")
    moved = Query.objects.get(pk=query_id)
    assert (moved.round, moved.chosen_round, moved.strategy, moved.label_count) == (2, 1, "random", 0)
    served = answer_all(study, people["bo"], django_capture_on_commit_callbacks)
    assert query_id in served  # without the move the claim serves round 2 only, and round 1 is closed
    # Round 2 now waits for the moved query too: 2 chosen + 1 moved, each answered once by bo.
    assert round_labels(Round.objects.get(study=study, number=2), study.overlap) == (3, 3)


def test_the_labels_of_a_moved_query_keep_the_round_and_strategy_that_chose_it(second_round, django_capture_on_commit_callbacks):
    study, first, people = second_round
    query_id, rejected = next(iter(first.items()))
    annotation_review(annotation=rejected, reviewer=people["rev"], verdict="rejected")
    answer_all(study, people["bo"], django_capture_on_commit_callbacks)
    rows = [row for row in export_build(study=study, format="raw").rows if row["query_id"] == query_id]
    assert len(rows) == 2  # ana's rejected answer and bo's new one
    assert {(row["round"], row["strategy"]) for row in rows} == {(1, "random")}
    # A snapshot of round 1 keeps the new label; one of round 2 (where it was answered) does not.
    new = next(row["annotation_id"] for row in rows if row["annotation_id"] != rejected.pk)
    assert new in selection(study, {"rounds": [1]}).annotation_ids
    assert new not in selection(study, {"rounds": [2]}).annotation_ids
    assert filters_check(study, {"rounds": [1, 2]})["rounds"] == [1, 2]


def test_a_rejection_in_the_current_round_or_outside_the_loop_moves_nothing(second_round, django_capture_on_commit_callbacks):
    study, _, people = second_round
    # One of round 2's two queries: the round stays the current one.
    [(query_id, annotation)] = answer_all(study, people["ana"], django_capture_on_commit_callbacks, limit=1).items()
    annotation_review(annotation=annotation, reviewer=people["rev"], verdict="rejected")
    assert Query.objects.filter(pk=query_id).values_list("round", "chosen_round").get() == (2, None)

    plain = make_study(annotators=[people["ana"]])
    membership_add(study=plain, username="rev", role="reviewer")
    make_items(plain, n_prompts=1)
    [(query_id, annotation)] = answer_all(plain, people["ana"], django_capture_on_commit_callbacks).items()
    annotation_review(annotation=annotation, reviewer=people["rev"], verdict="rejected")
    assert Query.objects.filter(pk=query_id).values_list("round", "chosen_round").get() == (0, None)


def test_a_moved_query_left_unlabelled_when_its_round_is_forced_to_end_returns_to_the_pool(second_round):
    study, first, people = second_round
    query_id, rejected = next(iter(first.items()))
    annotation_review(annotation=rejected, reviewer=people["rev"], verdict="rejected")
    round_start(study=study, by=study.created_by)  # round 2 ends with the moved query unlabelled
    back = Query.objects.get(pk=query_id)
    assert (back.round, back.chosen_round, back.strategy) == (0, None, "import")
