"""Each run kind trains from the labels the study holds, and registers a version that scores."""

import pytest

from annotate.models import ModelVersion
from annotate.services.items import items_import
from annotate.services.scoring import model_version_score
from annotate.services.training import training_run_execute, training_run_start
from tests.factories import UserFactory, jsonl, make_items, make_run, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def run_inline(study, kind: str, **config) -> ModelVersion:
    run = training_run_start(study=study, requested_by=study.created_by, kind=kind, config=config, enqueue=False)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return ModelVersion.objects.get(run=run)


def answer_everything(study, annotator, answer_for):
    """Answer each query the annotator is handed with answer_for(assignment)."""
    from annotate.services.assignments import assignment_next
    from annotate.services.feedback import annotation_submit

    n = 0
    while (assignment := assignment_next(study=study, annotator=annotator)) is not None:
        annotation_submit(query=assignment.query, annotator=annotator, client_key=f"k{n}", answer=answer_for(assignment))
        n += 1
    return n


def test_a_reward_run_learns_from_ties_with_davidson_and_from_rankings(tiny_encoder_dir, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    annotator = UserFactory()
    pairwise = make_study(annotators=[annotator])
    make_items(pairwise, n_prompts=10)
    label_preferring_first_response(pairwise, annotator)
    version = run_inline(pairwise, "reward", base_model=str(tiny_encoder_dir), loss="davidson", epochs=1, max_length=48)
    assert version.metrics["n_train"] + version.metrics["n_eval"] == 10

    ranked = make_study(annotators=[annotator], feedback_kinds=["ranking"], name="Ranked")
    make_items(ranked, n_prompts=10, n_responses=3, prefix="r")
    answer_everything(ranked, annotator, lambda a: {"ranking": [[r.pk] for r in a.query.ordered_responses()]})
    version = run_inline(ranked, "reward", base_model=str(tiny_encoder_dir), epochs=1, max_length=48)
    assert version.metrics["n_train"] + version.metrics["n_eval"] == 10
    scores = model_version_score(version=version, items=[([{"role": "user", "content": "Hi"}], "Hello")])
    assert len(scores.values) == 1 and scores.details is None


def test_a_span_run_trains_a_segment_model_from_the_stored_spans(tiny_encoder_dir, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    annotator = UserFactory()
    study = make_study(annotators=[annotator], feedback_kinds=["spans"])
    records = [
        {"id": f"s{i}", "prompt": f"Tell me about topic {i}.", "responses": [f"Topic {i} is calm. Bananas are blue forever."]}
        for i in range(10)
    ]
    items_import(study=study, lines=jsonl(records))

    def flag_bananas(assignment):
        response = assignment.query.ordered_responses()[0]
        start = response.text.index("Bananas")
        return {"spans": [{"response": response.pk, "start": start, "end": len(response.text), "category": "wrong-grounding"}]}

    assert answer_everything(study, annotator, flag_bananas) == 10
    version = run_inline(study, "span_reward", base_model=str(tiny_encoder_dir), epochs=1, max_length=64)
    assert version.kind == "span_reward" and "n_train" in version.metrics
    scores = model_version_score(version=version, items=[("Tell me.", "Topic 1 is calm. Bananas are blue forever.")])
    assert len(scores.details[0]) == 2  # two sentences, each with its dense reward


def test_a_rating_run_regresses_on_the_stored_ratings(tiny_encoder_dir, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    annotator = UserFactory()
    aspects = [{"key": "clarity", "label": "Clarity"}]
    study = make_study(annotators=[annotator], feedback_kinds=["ratings"], rating_aspects=aspects)
    make_items(study, n_prompts=10, n_responses=2, prefix="g")  # all on the eval side: 0.2**10 = 1e-7

    def rate(assignment):
        response = assignment.query.ordered_responses()[0]
        return {"ratings": [{"response": response.pk, "aspect": "clarity", "value": 5 if "Answer 0" in response.text else 2}]}

    assert answer_everything(study, annotator, rate) == 20
    version = run_inline(study, "rating_reward", base_model=str(tiny_encoder_dir), epochs=1, max_length=48)
    scores = model_version_score(version=version, items=[("What is 1 + 1?", "Answer 0 to question 1: 2")])
    assert set(scores.details[0]) == {"clarity"} and 1.0 <= scores.values[0] <= 5.0


def test_a_span_run_without_span_labels_fails_saying_how_many_it_has():
    study = make_study(feedback_kinds=["spans"])
    run = make_run(study, "span_reward")  # queued while it had labels, say; the worker checks again
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("NotEnoughLabels: ") and "it has 0" in run.error
    assert run.log == ""  # an expected condition, said in one line: no traceback to read through


def test_a_run_trains_in_two_processes_when_asked_and_registers_one_version(tiny_encoder_dir, settings, tmp_path):
    """The multi-GPU path (torchrun + accelerate DDP), exercised on two CPU processes."""
    settings.ARTIFACTS_DIR = tmp_path
    settings.PREFLAB_TRAIN_PROCESSES = "2"
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=12)
    label_preferring_first_response(study, annotator)
    version = run_inline(study, "reward", base_model=str(tiny_encoder_dir), epochs=1, max_length=48, batch_size=2)
    assert version.metrics["n_train"] + version.metrics["n_eval"] == 12
    assert version.run.step == version.run.total_steps > 0
    scores = model_version_score(version=version, items=[("Hi", "Hello")])
    assert len(scores.values) == 1


def test_a_failing_multi_process_run_fails_with_the_processes_own_error(tiny_encoder_dir, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    settings.PREFLAB_TRAIN_PROCESSES = "2"
    study = make_study()
    run = make_run(study, "reward")
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "NotEnoughLabels" in run.error
