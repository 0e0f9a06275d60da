"""The round loop through its services: select, collect, train, select again; pause, resume, force, switch.

Every step of a round is a job (a TrainingRun): the tests record what is queued and run it as a
worker would (`queued_jobs.run_all()`).
"""

import numpy as np
import pytest

from annotate.errors import Conflict
from annotate.models import Annotation, Query, Round, TrainingRun
from annotate.services.rounds import round_pause, round_resume, round_start, rounds_after_run
from annotate.services.studies import study_update
from annotate.services.training import training_run_execute
from tests.factories import UserFactory, make_items, make_study, split_given
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db
TRAINING = {"epochs": 1, "batch_size": 4, "max_length": 32, "min_pairs": 4}


def loop_study(n_prompts=12, round_size=5, annotators=(), **fields):
    study = make_study(annotators=annotators, round_size=round_size, **fields)
    make_items(study, n_prompts=n_prompts)
    return study


def selected(round_: Round, jobs) -> Round:
    """Run the round's selecting jobs as a worker would; the round, as they left it."""
    assert jobs.kinds()[-1] in ("features", "selection")
    jobs.run_all()
    return Round.objects.get(pk=round_.pk)


def started(study, jobs) -> Round:
    """Start the loop and run the jobs it queued; `study` is refreshed, as a request would load it."""
    chosen = selected(round_start(study=study, by=study.created_by), jobs)
    study.refresh_from_db()
    return chosen


@pytest.fixture
def round_one(queued_jobs, tiny_encoder_dir):
    """(study, annotator): round 1 of 6 queries is collecting; each round trains a tiny model.

    One of the round's prompts is held out, the other five train: left to the hash of the study's
    id, all six would land in eval (and training fail) with probability 0.2**6 = 6.4e-5.
    """
    annotator = UserFactory()
    study = loop_study(annotators=[annotator], round_size=6, reward_model=str(tiny_encoder_dir), training_config=TRAINING)
    started(study, queued_jobs)
    split_given(study, Query.objects.filter(study=study, round=1).order_by("id")[:1])
    return study, annotator


@pytest.fixture
def label_round(queued_jobs, django_capture_on_commit_callbacks):
    """Label what the claim serves, through the services, committing each label; returns the reward run that queued."""

    def label(study, annotator) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            label_preferring_first_response(study, annotator)
        assert queued_jobs.kinds() == ["reward"]
        return queued_jobs.pop()

    return label


def test_starting_the_loop_queues_a_selection_job_and_the_claim_serves_nothing_until_it_ran(queued_jobs):
    study = loop_study()
    first = round_start(study=study, by=study.created_by)
    study.refresh_from_db()
    assert (first.number, first.status, first.strategy, first.size) == (1, "selecting", "random", 5)
    assert (study.loop_status, study.current_round) == ("running", 1)
    run = TrainingRun.objects.get(pk=queued_jobs[0])
    assert queued_jobs.kinds() == ["selection"] and run.round_id == first.pk
    assert run.config == {"strategy": "random", "params": {}, "size": 5, "seed": 1}
    assert first.current_run() == run
    assert not Query.objects.filter(study=study, round=1).exists()


def test_selection_writes_round_strategy_score_and_priority_of_its_picks_best_first(queued_jobs):
    study = loop_study()
    chosen = started(study, queued_jobs)
    assert (chosen.status, chosen.selected, chosen.chosen_by) == ("collecting", 5, "random")
    picks = Query.objects.filter(study=study, round=1).order_by("-priority")
    assert picks.count() == 5
    assert [q.priority for q in picks] == [5, 4, 3, 2, 1]
    assert all(q.strategy == "random" and q.score is not None for q in picks)
    assert Query.objects.filter(study=study, round=0).count() == 7
    run = chosen.current_run()
    assert (run.kind, run.status, run.progress) == ("selection", "succeeded", 1.0)
    assert run.metrics["picked"] == list(picks.values_list("pk", flat=True)) and run.metrics["pool"] == 12
    assert rounds_after_run(run_id=run.pk) is None  # a duplicated delivery writes nothing more
    assert Query.objects.filter(study=study, round=1).count() == 5


def test_a_round_larger_than_the_pool_is_cut_to_it_and_says_so(queued_jobs):
    study = loop_study(n_prompts=3, round_size=10)
    chosen = started(study, queued_jobs)
    assert chosen.selected == 3 and chosen.size == 10
    assert "10 were asked for, but only 3 were left in the pool" in chosen.message


def test_an_empty_pool_ends_the_loop_with_a_clear_status_and_queues_nothing(queued_jobs):
    study = loop_study(n_prompts=3, round_size=3)
    started(study, queued_jobs)
    Query.objects.filter(study=study, round=1).update(label_count=1)  # as if labelled
    study.refresh_from_db()
    Round.objects.filter(study=study, number=1).update(status="done")
    second = round_start(study=study, by=None)
    study.refresh_from_db()
    assert second.status == "exhausted" and study.loop_status == "exhausted" and not queued_jobs
    assert second.message == "Pool exhausted after round 1: every query has been chosen or labelled."


def test_a_pool_emptied_while_its_selection_waited_ends_the_loop(queued_jobs):
    study = loop_study(n_prompts=3, round_size=3)
    first = round_start(study=study, by=None)
    Query.objects.filter(study=study).update(label_count=1)  # labelled some other way meanwhile
    chosen = selected(first, queued_jobs)
    assert chosen.status == "exhausted" and chosen.message.startswith("Pool exhausted after round 0")


def test_a_strategy_that_needs_a_model_picks_its_first_round_at_random_and_says_so(queued_jobs):
    study = loop_study(selection_strategy="uncertainty")
    chosen = started(study, queued_jobs)
    assert (chosen.strategy, chosen.chosen_by) == ("uncertainty", "random")
    assert "picked at random: uncertainty needs a model" in chosen.message
    assert set(Query.objects.filter(study=study, round=1).values_list("strategy", flat=True)) == {"random"}


def test_d_optimal_computes_features_in_a_job_first_and_chooses_from_them(queued_jobs, tiny_encoder_dir):
    study = loop_study(selection_strategy="d_optimal", reward_model=str(tiny_encoder_dir))
    first = round_start(study=study, by=study.created_by)
    assert queued_jobs.kinds() == ["features"]
    chosen = selected(first, queued_jobs)
    assert (chosen.status, chosen.chosen_by, chosen.selected) == ("collecting", "d_optimal", 5), chosen.message
    features, selection = chosen.runs.order_by("id")
    assert [(run.kind, run.status) for run in (features, selection)] == [("features", "succeeded"), ("selection", "succeeded")]
    assert features.metrics["computed"] == features.metrics["responses"] > 0
    scores = list(Query.objects.filter(study=study, round=1).order_by("-priority").values_list("score", flat=True))
    assert scores == sorted(scores, reverse=True) and scores[0] > 0  # log-det gains, largest first


def test_d_optimal_starts_its_design_from_what_is_already_labelled(queued_jobs, tiny_encoder_dir, monkeypatch):
    import learning.select.choose

    study = loop_study(selection_strategy="d_optimal", reward_model=str(tiny_encoder_dir))
    started(study, queued_jobs)
    Query.objects.filter(study=study, round=1).update(label_count=1)  # as if labelled
    Round.objects.filter(study=study, number=1).update(status="done")
    gold = Query.objects.filter(study=study, round=0).order_by("id").first()
    Query.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"choice": "a"}, label_count=1)  # not data
    seen = {}
    real = learning.select.choose.choose_queries

    def spy(params, k, **kwargs):
        seen.update(kwargs)
        return real(params, k, **kwargs)

    monkeypatch.setattr(learning.select.choose, "choose_queries", spy)
    second = selected(round_start(study=study, by=None), queued_jobs)
    assert second.selected == 5 and not Query.objects.filter(study=study, round=2, label_count__gt=0).exists()
    assert seen["features"].shape[0] == 6 and seen["labelled_features"].shape[0] == 5  # the gold answer is in neither
    assert second.runs.order_by("id")[0].metrics["computed"] == 0  # every response's features were cached already


@pytest.mark.parametrize("strategy", ["d_optimal", "uncertainty"])
def test_features_whose_model_fails_its_checksum_fail_the_job_and_the_round_waits_with_the_message(
    queued_jobs, round_one, label_round, strategy
):
    from annotate.models import ModelVersion

    study, annotator = round_one
    run_id = label_round(study, annotator)
    study = study_update(study=study, selection_strategy=strategy)
    training_run_execute(run_id=run_id)
    version = ModelVersion.objects.get(run_id=run_id)
    ModelVersion.objects.filter(pk=version.pk).update(checksum="0" * 64)  # the artifact changed since it was registered
    rounds_after_run(run_id=run_id)
    assert queued_jobs.kinds() == ["features"]
    features = TrainingRun.objects.get(pk=queued_jobs[0])
    assert features.config == {"model_version": version.pk} and features.round.number == 2
    queued_jobs.run_all()
    failed = Round.objects.get(study=study, number=2)
    features.refresh_from_db()
    assert features.status == "failed" and "checksum" in features.error
    assert failed.status == "failed" and failed.message == f"Features failed: {features.error}"[:500]
    assert not Query.objects.filter(study=study, round=2).exists() and not queued_jobs
    study.refresh_from_db()
    assert study.loop_status == "running"  # waiting for a manager to force the next round


def test_an_uncertainty_round_caches_rewards_on_the_gpu_queue_and_selection_reads_them_loading_no_model(
    queued_jobs, round_one, label_round, forbid_model_loading
):
    from annotate.models import ModelVersion
    from annotate.services.features import query_margins
    from annotate.tasks import train_model
    from learning.jobs import JOB_KINDS

    study, annotator = round_one
    run_id = label_round(study, annotator)
    study = study_update(study=study, selection_strategy="uncertainty")
    training_run_execute(run_id=run_id)
    rounds_after_run(run_id=run_id)
    version = ModelVersion.objects.get(run_id=run_id)
    assert queued_jobs.kinds() == ["features"] and JOB_KINDS["features"].queue == "gpu"
    features = TrainingRun.objects.get(pk=queued_jobs[0])
    assert features.config == {"model_version": version.pk}
    train_model(queued_jobs.pop(0))
    features.refresh_from_db()
    responses = features.metrics["responses"]
    assert features.metrics == {"responses": responses, "rewards_computed": responses}  # uncertainty reads no features
    assert queued_jobs.kinds() == ["selection"]

    make_items(study, n_prompts=2, prefix="late")  # imported after the features step: left for the next round
    late = list(Query.objects.filter(study=study, prompt__external_id__startswith="late").values_list("pk", flat=True))
    forbid_model_loading()
    second = selected(Round.objects.get(study=study, number=2), queued_jobs)
    assert (second.chosen_by, second.selected) == ("uncertainty", 6), second.message
    assert "2 pool queries left out" in second.message
    assert len(late) == 2 and Query.objects.filter(pk__in=late, round=0).count() == 2
    picked = list(Query.objects.filter(study=study, round=2).order_by("-priority"))
    margins = query_margins(version=version, queries=picked)[0]
    assert [q.score for q in picked] == pytest.approx(list(-np.abs(margins)), abs=1e-6)
    assert TrainingRun.objects.filter(round=second, kind="selection").get().metrics["left_out"] == 2


def test_a_failed_selection_job_fails_its_round_with_the_message(queued_jobs, monkeypatch):
    study = loop_study()
    first = round_start(study=study, by=None)

    def broken(**kwargs):
        raise ValueError("margins contain NaN or infinite values")

    monkeypatch.setattr("learning.select.job.selection_job", broken)
    failed = selected(first, queued_jobs)
    assert failed.status == "failed"
    assert failed.message == "Selection failed: ValueError: margins contain NaN or infinite values"
    assert not Query.objects.filter(study=study, round=1).exists()


def test_a_selection_job_whose_worker_was_lost_is_queued_again_by_the_sweep_and_completes(queued_jobs, settings):
    from datetime import timedelta

    from django.utils import timezone

    from annotate.services.training import training_runs_requeue_lost

    study = loop_study()
    first = round_start(study=study, by=None)
    run_id = queued_jobs.pop()
    stale = timezone.now() - timedelta(seconds=settings.PREFLAB_RUN_STALE_SECONDS + 1)
    TrainingRun.objects.filter(pk=run_id).update(status="running", attempts=1, heartbeat_at=stale, worker="gone:1")
    assert training_runs_requeue_lost() == [run_id] and queued_jobs == [run_id]
    chosen = selected(first, queued_jobs)
    assert chosen.status == "collecting" and chosen.selected == 5
    assert TrainingRun.objects.get(pk=run_id).attempts == 2


def test_a_selection_run_is_refused_outside_a_round():
    from annotate.errors import InvalidInput
    from annotate.services.training import training_run_start

    study = loop_study()
    with pytest.raises(InvalidInput) as refused:
        training_run_start(study=study, requested_by=study.created_by, kind="selection", config={})
    assert refused.value.field == "kind" and "step of a round" in refused.value.message
    assert not TrainingRun.objects.filter(study=study).exists()


def test_a_round_whose_queries_reach_their_overlap_starts_training_with_the_study_config(
    queued_jobs, round_one, django_capture_on_commit_callbacks
):
    study, annotator = round_one
    with django_capture_on_commit_callbacks(execute=True):
        assert label_preferring_first_response(study, annotator, limit=5) == 5
    assert Round.objects.get(study=study, number=1).status == "collecting"  # one query left
    with django_capture_on_commit_callbacks(execute=True):
        assert label_preferring_first_response(study, annotator) == 1  # and nothing beyond the round
    closed = Round.objects.get(study=study, number=1)
    assert closed.status == "training" and closed.labels == 6
    run = closed.current_run()
    assert run.kind == "reward" and run.config["epochs"] == 1 and run.config["max_length"] == 32
    assert queued_jobs == [run.pk]


def test_after_its_run_a_round_records_the_model_and_the_next_round_is_selected(queued_jobs, round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    training_run_execute(run_id=run_id)
    done = rounds_after_run(run_id=run_id)
    assert done.status == "done" and done.trained_version.run_id == run_id
    assert done.heldout_accuracy is not None
    assert done.heldout_accuracy == done.trained_version.metrics["heldout_accuracy"]
    assert done.finished_at is not None
    second = Round.objects.get(study=study, number=2)
    assert second.status == "selecting" and queued_jobs.kinds() == ["selection"]
    assert second.model_version_id == done.trained_version_id
    second = selected(second, queued_jobs)
    assert second.model_version_id == done.trained_version_id and second.selected == 6
    assert rounds_after_run(run_id=run_id) is None  # a second delivery moves nothing


def test_a_failed_run_fails_its_round_and_the_loop_waits(round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    TrainingRun.objects.filter(pk=run_id).update(status="failed", error="RuntimeError: out of memory")
    failed = rounds_after_run(run_id=run_id)
    assert failed.status == "failed" and failed.message == "Training failed: RuntimeError: out of memory"
    assert not Round.objects.filter(study=study, number=2).exists()


def test_a_run_that_is_no_rounds_changes_nothing(queued_jobs):
    study = loop_study()
    started(study, queued_jobs)
    run = TrainingRun.objects.create(study=study, kind="reward", status="succeeded")
    assert rounds_after_run(run_id=run.pk) is None
    assert Round.objects.get(study=study).status == "collecting"


def test_a_paused_loop_trains_its_round_but_selects_the_next_only_when_resumed(queued_jobs, round_one, label_round):
    study, annotator = round_one
    round_pause(study=study)
    with pytest.raises(Conflict):
        round_pause(study=study)
    run_id = label_round(study, annotator)
    training_run_execute(run_id=run_id)
    assert rounds_after_run(run_id=run_id).status == "done"
    assert not Round.objects.filter(study=study, number=2).exists() and not queued_jobs
    study = round_resume(study=study)
    assert study.loop_status == "running"
    assert Round.objects.get(study=study, number=2).status == "selecting" and queued_jobs.kinds() == ["selection"]


def test_forcing_the_next_round_trains_on_what_is_labelled_and_returns_the_rest_to_the_pool(queued_jobs, tiny_encoder_dir):
    study = loop_study(round_size=6, reward_model=str(tiny_encoder_dir), training_config={**TRAINING, "min_pairs": 100})
    started(study, queued_jobs)
    Query.objects.filter(pk=Query.objects.filter(study=study, round=1).first().pk).update(label_count=1)
    forced = round_start(study=study, by=study.created_by)
    assert forced.number == 1 and forced.status == "done"
    assert forced.message.startswith("Ended by a manager after 1 labels. Not trained:")
    assert Query.objects.filter(study=study, round=1).count() == 1  # the labelled one keeps its round
    assert Round.objects.get(study=study, number=2).status == "selecting"
    again = round_start(study=study, by=study.created_by)  # round 2's job lost? it is queued again
    assert again.number == 2 and queued_jobs.kinds() == ["selection", "selection"] and queued_jobs[0] == queued_jobs[1]
    assert Round.objects.filter(study=study).count() == 2
    assert selected(again, queued_jobs).selected == 6  # the duplicate delivery ran nothing twice


def test_forcing_a_round_whose_run_finished_unnoticed_moves_the_loop_on_and_one_still_training_is_refused(round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    with pytest.raises(Conflict) as refused:
        round_start(study=study, by=study.created_by)
    assert refused.value.message == "Round 1 is training a reward model; the next round starts when it is done."
    training_run_execute(run_id=run_id)  # a worker that stopped before rounds_after_run
    assert round_start(study=study, by=study.created_by).status == "done"
    assert Round.objects.get(study=study, number=2).status == "selecting"


def test_forcing_a_round_whose_selection_finished_unnoticed_writes_its_picks(queued_jobs):
    study = loop_study()
    first = round_start(study=study, by=None)
    training_run_execute(run_id=queued_jobs.pop())  # a worker that stopped before rounds_after_run
    assert round_start(study=study, by=study.created_by).status == "collecting"
    assert Query.objects.filter(study=study, round=first.number).count() == 5 and not queued_jobs


def test_switching_strategy_mid_study_keeps_labelled_queries_round_and_strategy(queued_jobs, round_one, label_round):
    study, annotator = round_one
    run_id = label_round(study, annotator)
    labelled = dict(Query.objects.filter(study=study, label_count__gt=0).values_list("pk", "strategy"))
    study = study_update(study=study, selection_strategy="uncertainty")
    training_run_execute(run_id=run_id)
    rounds_after_run(run_id=run_id)
    second = selected(Round.objects.get(study=study, number=2), queued_jobs)
    assert (second.strategy, second.chosen_by) == ("uncertainty", "uncertainty"), second.message
    assert dict(Query.objects.filter(pk__in=labelled).values_list("pk", "strategy")) == labelled
    assert set(Query.objects.filter(pk__in=labelled).values_list("round", flat=True)) == {1}
    assert Annotation.objects.filter(query__study=study).count() == 6
    assert not Query.objects.filter(study=study, round=2, label_count__gt=0).exists()
