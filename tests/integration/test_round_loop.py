"""A real `celery worker` runs the round loop: a labelled round trains a model and selects the next, with no manual step.

Every step (features, selection, training) is a job the worker runs from its kind's queue.
"""

import pytest

from annotate.models import ModelVersion, Query, Round
from annotate.services.rounds import round_start
from tests.factories import UserFactory, make_items, make_study, split_given
from tests.integration import test_celery_worker as worker
from tests.labelling import label_preferring_first_response

# The worker fixtures, shared with the worker tests.
start_celery, start_worker, wait_for = worker.start_celery, worker.start_worker, worker.wait_for


def round_in(study, number: int, *statuses: str) -> Round | None:
    return Round.objects.filter(study=study, number=number, status__in=statuses).first()


@pytest.mark.django_db(transaction=True)
def test_a_labelled_round_trains_a_model_and_the_next_round_is_selected_on_its_own(start_worker, tiny_encoder_dir):
    _, log = start_worker()
    annotator = UserFactory()
    study = make_study(
        annotators=[annotator],
        round_size=8,
        selection_strategy="uncertainty",  # round 1 at random; round 2 reads the model's cached rewards
        reward_model=str(tiny_encoder_dir),
        training_config={"epochs": 1, "batch_size": 4, "max_length": 32, "min_pairs": 4},
    )
    make_items(study, n_prompts=20)
    round_start(study=study, by=study.created_by)
    first = wait_for(lambda: round_in(study, 1, "collecting", "failed"), timeout=120, what="round 1 to be selected", log=log)
    assert first.status == "collecting", first.message

    study.refresh_from_db()  # as the next request would load it
    # One of the round's prompts held out, the others train: by the hash, all 8 eval has p = 0.2**8.
    split_given(study, Query.objects.filter(study=study, round=1).order_by("id")[:1])
    assert label_preferring_first_response(study, annotator) == 8  # the round, and not a query beyond it

    second = wait_for(
        lambda: round_in(study, 2, "collecting", "failed", "exhausted"), timeout=300, what="round 2 to be selected", log=log
    )
    assert (second.status, second.chosen_by) == ("collecting", "uncertainty"), second.message
    first.refresh_from_db()
    assert first.status == "done" and first.labels == 8
    version = ModelVersion.objects.get(pk=first.trained_version_id)
    assert first.heldout_accuracy is not None and first.heldout_accuracy == version.metrics["heldout_accuracy"]
    assert second.model_version_id == version.pk
    assert Query.objects.filter(study=study, round=2).count() == 8
    # Each step was a job the worker ran: round 1 was selected, then trained on; round 2 had its
    # rewards cached under the new model (the gpu queue's job), then was selected from them.
    steps = {r.number: [(run.kind, run.status) for run in r.runs.order_by("id")] for r in (first, second)}
    assert steps == {
        1: [("selection", "succeeded"), ("reward", "succeeded")],
        2: [("features", "succeeded"), ("selection", "succeeded")],
    }
    assert not Query.objects.filter(study=study, round=2, label_count__gt=0).exists()


@pytest.mark.django_db(transaction=True)
def test_a_d_optimal_round_computes_features_then_selects_through_the_worker(start_worker, tiny_encoder_dir):
    _, log = start_worker()
    study = make_study(round_size=5, selection_strategy="d_optimal", reward_model=str(tiny_encoder_dir))
    make_items(study, n_prompts=12)
    round_start(study=study, by=study.created_by)
    first = wait_for(lambda: round_in(study, 1, "collecting", "failed"), timeout=120, what="round 1 to be selected", log=log)
    assert (first.status, first.chosen_by, first.selected) == ("collecting", "d_optimal", 5), first.message
    steps = [(run.kind, run.status) for run in first.runs.order_by("id")]
    assert steps == [("features", "succeeded"), ("selection", "succeeded")]
