"""The round loop through its services: select, collect, train, select again; pause, resume, force, switch."""

import pytest

from annotate.errors import Conflict
from annotate.models import Annotation, Query, Round, TrainingRun
from annotate.services.rounds import round_pause, round_resume, round_select, round_start, rounds_after_run
from annotate.services.studies import study_update
from annotate.services.training import training_run_execute
from tests.factories import UserFactory, make_items, make_study, split_given
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db
TRAINING = {"epochs": 1, "batch_size": 4, "max_length": 32, "min_pairs": 4}


@pytest.fixture
def queued(monkeypatch):
    """The jobs the loop queues, recorded instead of sent: {"select": [round ids], "train": [run ids]}."""
    jobs = {"select": [], "train": []}
    monkeypatch.setattr("annotate.tasks.select_round.delay_on_commit", jobs["select"].append)
    monkeypatch.setattr("annotate.tasks.train_model.delay_on_commit", jobs["train"].append)
    return jobs


def loop_study(n_prompts=12, round_size=5, annotators=(), **fields):
    study = make_study(annotators=annotators, round_size=round_size, **fields)
    make_items(study, n_prompts=n_prompts)
    return study


def started(study, queued) -> Round:
    """Start the loop and run the selection job it queued; `study` is refreshed, as a request would load it."""
    first = round_start(study=study, by=study.created_by)
    assert queued["select"][-1] == first.pk
    chosen = round_select(round_id=first.pk)
    study.refresh_from_db()
    return chosen


@pytest.fixture
def round_one(queued, tiny_encoder_dir):
    """(study, annotator): round 1 of 6 queries is collecting; each round trains a tiny model.

    One of the round's prompts is held out, the other five train: left to the hash of the study's
    id, all six would land in eval (and training fail) with probability 0.2**6 = 6.4e-5.
    """
    annotator = UserFactory()
    study = loop_study(annotators=[annotator], round_size=6, reward_model=str(tiny_encoder_dir), training_config=TRAINING)
    started(study, queued)
    split_given(study, Query.objects.filter(study=study, round=1).order_by("id")[:1])
    return study, annotator


@pytest.fixture
def label_round(queued, django_capture_on_commit_callbacks):
    """Label what the claim serves, through the services, committing each label; returns the run that queued."""

    def label(study, annotator) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            label_preferring_first_response(study, annotator)
        return queued["train"][0]

    return label


def test_starting_the_loop_queues_a_selection_and_the_claim_serves_nothing_until_it_ran(queued):
    study = loop_study()
    first = round_start(study=study, by=study.created_by)
    study.refresh_from_db()
    assert (first.number, first.status, first.strategy, first.size) == (1, "selecting", "random", 5)
    assert (study.loop_status, study.current_round) == ("running", 1)
    assert queued["select"] == [first.pk]
    assert not Query.objects.filter(study=study, round=1).exists()


def test_selection_writes_round_strategy_score_and_priority_of_its_picks_best_first(queued):
    study = loop_study()
    chosen = started(study, queued)
    assert (chosen.status, chosen.selected, chosen.chosen_by) == ("collecting", 5, "random")
    picks = Query.objects.filter(study=study, round=1).order_by("-priority")
    assert picks.count() == 5
    assert [q.priority for q in picks] == [5, 4, 3, 2, 1]
    assert all(q.strategy == "random" and q.score is not None for q in picks)
    assert Query.objects.filter(study=study, round=0).count() == 7
    assert round_select(round_id=chosen.pk).selected == 5  # a duplicated job writes nothing more
    assert Query.objects.filter(study=study, round=1).count() == 5


def test_a_round_larger_than_the_pool_is_cut_to_it_and_says_so(queued):
    study = loop_study(n_prompts=3, round_size=10)
    chosen = started(study, queued)
    assert chosen.selected == 3 and chosen.size == 10
    assert "10 were asked for, but only 3 were left in the pool" in chosen.message


def test_an_empty_pool_ends_the_loop_with_a_clear_status(queued):
    study = loop_study(n_prompts=3, round_size=3)
    started(study, queued)
    Query.objects.filter(study=study, round=1).update(label_count=1)  # as if labelled
    study.refresh_from_db()
    Round.objects.filter(study=study, number=1).update(status="done")
    second = round_select(round_id=round_start(study=study, by=None).pk)
    study.refresh_from_db()
    assert second.status == "exhausted" and study.loop_status == "exhausted"
    assert second.message == "Pool exhausted after round 1: every query has been chosen or labelled."


def test_a_strategy_that_needs_a_model_picks_its_first_round_at_random_and_says_so(queued):
    study = loop_study(selection_strategy="uncertainty")
    chosen = started(study, queued)
    assert (chosen.strategy, chosen.chosen_by) == ("uncertainty", "random")
    assert "picked at random: uncertainty needs a model" in chosen.message
    assert set(Query.objects.filter(study=study, round=1).values_list("strategy", flat=True)) == {"random"}


def test_d_optimal_chooses_from_real_features_of_the_base_model(queued, tiny_encoder_dir):
    study = loop_study(selection_strategy="d_optimal", reward_model=str(tiny_encoder_dir))
    chosen = started(study, queued)
    assert (chosen.status, chosen.chosen_by, chosen.selected) == ("collecting", "d_optimal", 5), chosen.message
    scores = list(Query.objects.filter(study=study, round=1).order_by("-priority").values_list("score", flat=True))
    assert scores == sorted(scores, reverse=True) and scores[0] > 0  # log-det gains, largest first


def test_d_optimal_starts_its_design_from_what_is_already_labelled(queued, tiny_encoder_dir, monkeypatch):
    import learning.select.choose

    study = loop_study(selection_strategy="d_optimal", reward_model=str(tiny_encoder_dir))
    started(study, queued)
    Query.objects.filter(study=study, round=1).update(label_count=1)  # as if labelled
    Round.objects.filter(study=study, number=1).update(status="done")
    seen = {}
    real = learning.select.choose.choose_queries

    def spy(params, k, **kwargs):
        seen.update(kwargs)
        return real(params, k, **kwargs)

    monkeypatch.setattr(learning.select.choose, "choose_queries", spy)
    second = round_select(round_id=round_start(study=study, by=None).pk)
    assert second.selected == 5 and not Query.objects.filter(study=study, round=2, label_count__gt=0).exists()
    assert seen["features"].shape[0] == 7 and seen["labelled_features"].shape[0] == 5


def test_a_round_whose_queries_reach_their_overlap_starts_training_with_the_study_config(
    queued, round_one, django_capture_on_commit_callbacks
):
    study, annotator = round_one
    with django_capture_on_commit_callbacks(execute=True):
        assert label_preferring_first_response(study, annotator, limit=5) == 5
    assert Round.objects.get(study=study, number=1).status == "collecting"  # one query left
    with django_capture_on_commit_callbacks(execute=True):
        assert label_preferring_first_response(study, annotator) == 1  # and nothing beyond the round
    closed = Round.objects.get(study=study, number=1)
    assert closed.status == "training" and closed.labels == 6
    run = TrainingRun.objects.get(pk=closed.run_id)
    assert run.kind == "reward" and run.config["epochs"] == 1 and run.config["max_length"] == 32
    assert queued["train"] == [run.pk]


def test_after_its_run_a_round_records_the_model_and_the_next_round_is_selected(queued, round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    training_run_execute(run_id=run_id)
    done = rounds_after_run(run_id=run_id)
    assert done.status == "done" and done.trained_version.run_id == run_id
    assert done.heldout_accuracy is not None
    assert done.heldout_accuracy == done.trained_version.metrics["heldout_accuracy"]
    assert done.finished_at is not None
    second = Round.objects.get(study=study, number=2)
    assert second.status == "selecting" and queued["select"][-1] == second.pk
    second = round_select(round_id=second.pk)
    assert second.model_version_id == done.trained_version_id and second.selected == 6
    assert rounds_after_run(run_id=run_id) is None  # a second delivery moves nothing


def test_a_failed_run_fails_its_round_and_the_loop_waits(round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    TrainingRun.objects.filter(pk=run_id).update(status="failed", error="RuntimeError: out of memory")
    failed = rounds_after_run(run_id=run_id)
    assert failed.status == "failed" and failed.message == "Training failed: RuntimeError: out of memory"
    assert not Round.objects.filter(study=study, number=2).exists()


def test_a_run_that_is_no_rounds_changes_nothing(queued):
    study = loop_study()
    started(study, queued)
    run = TrainingRun.objects.create(study=study, kind="reward", status="succeeded")
    assert rounds_after_run(run_id=run.pk) is None
    assert Round.objects.get(study=study).status == "collecting"


def test_a_paused_loop_trains_its_round_but_selects_the_next_only_when_resumed(round_one, label_round):
    study, annotator = round_one
    round_pause(study=study)
    with pytest.raises(Conflict):
        round_pause(study=study)
    run_id = label_round(study, annotator)
    training_run_execute(run_id=run_id)
    assert rounds_after_run(run_id=run_id).status == "done"
    assert not Round.objects.filter(study=study, number=2).exists()
    study = round_resume(study=study)
    assert study.loop_status == "running"
    assert Round.objects.get(study=study, number=2).status == "selecting"


def test_forcing_the_next_round_trains_on_what_is_labelled_and_returns_the_rest_to_the_pool(queued, tiny_encoder_dir):
    study = loop_study(round_size=6, reward_model=str(tiny_encoder_dir), training_config={**TRAINING, "min_pairs": 100})
    started(study, queued)
    Query.objects.filter(pk=Query.objects.filter(study=study, round=1).first().pk).update(label_count=1)
    forced = round_start(study=study, by=study.created_by)
    assert forced.number == 1 and forced.status == "done"
    assert forced.message.startswith("Ended by a manager after 1 labels. Not trained:")
    assert Query.objects.filter(study=study, round=1).count() == 1  # the labelled one keeps its round
    assert Round.objects.get(study=study, number=2).status == "selecting"
    again = round_start(study=study, by=study.created_by)  # round 2's job lost? it is queued again
    assert again.number == 2 and queued["select"][-2:] == [again.pk, again.pk]
    assert Round.objects.filter(study=study).count() == 2


def test_forcing_a_round_whose_run_finished_unnoticed_moves_the_loop_on_and_one_still_training_is_refused(round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    with pytest.raises(Conflict) as refused:
        round_start(study=study, by=study.created_by)
    assert refused.value.message == "Round 1 is training a reward model; the next round starts when it is done."
    training_run_execute(run_id=run_id)  # a worker that stopped before rounds_after_run
    assert round_start(study=study, by=study.created_by).status == "done"
    assert Round.objects.get(study=study, number=2).status == "selecting"


def test_switching_strategy_mid_study_keeps_labelled_queries_round_and_strategy(round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    labelled = dict(Query.objects.filter(study=study, label_count__gt=0).values_list("pk", "strategy"))
    study = study_update(study=study, selection_strategy="uncertainty")
    training_run_execute(run_id=run_id)
    rounds_after_run(run_id=run_id)
    second = round_select(round_id=Round.objects.get(study=study, number=2).pk)
    assert (second.strategy, second.chosen_by) == ("uncertainty", "uncertainty"), second.message
    assert dict(Query.objects.filter(pk__in=labelled).values_list("pk", "strategy")) == labelled
    assert set(Query.objects.filter(pk__in=labelled).values_list("round", flat=True)) == {1}
    assert Annotation.objects.filter(query__study=study).count() == 6
    assert not Query.objects.filter(study=study, round=2, label_count__gt=0).exists()
