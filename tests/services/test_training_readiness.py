"""Which runs can train now, counted as each trainer counts, and the refusal of those that cannot."""

from dataclasses import replace

import pytest
from rest_framework.test import APIClient

from annotate.errors import InvalidInput
from annotate.models import TrainingRun
from annotate.selectors.training_data import preference_pairs, ranking_examples
from annotate.selectors.training_readiness import run_readiness, study_readiness
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from annotate.services.training import training_run_start
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def answer_each(study, annotator, answers) -> None:
    """Answer the annotator's next queries with the given answers (functions of the assignment or dicts)."""
    for n, answer in enumerate(answers):
        assignment = assignment_next(study=study, annotator=annotator)
        given = answer(assignment) if callable(answer) else answer
        annotation_submit(query=assignment.query, annotator=annotator, client_key=f"r{study.pk}-{n}", answer=given)


def pairwise_study(choices: list[str]):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=len(choices))
    answer_each(study, annotator, [{"choice": choice} for choice in choices])
    return study


def ranking_study(rankings: list):
    """rankings: per query, groups of positions in the query's order ([[0], [1, 2]]) or a cannot-rank reason."""
    annotator = UserFactory()
    study = make_study(annotators=[annotator], feedback_kinds=["ranking"])
    make_items(study, n_prompts=len(rankings), n_responses=3)

    def answer(groups):
        if isinstance(groups, str):
            return {"cannot_rank": groups}
        return lambda a: {"ranking": [[a.query.ordered_responses()[i].pk for i in group] for group in groups]}

    answer_each(study, annotator, [answer(groups) for groups in rankings])
    return study


def test_ties_and_both_bad_do_not_count_as_pairs_under_bradley_terry():
    study = pairwise_study(["a", "b", "a"] + ["tie"] * 5 + ["both_bad"])
    readiness = run_readiness(study, "reward")
    assert (readiness.usable, readiness.needed, readiness.can_run) == (3, 8, False)
    assert readiness.reason == "needs 8 usable pairs; has 3 (5 ties, 1 both-bad answer left out)"
    davidson = run_readiness(study, "reward", {"loss": "davidson"})
    assert (davidson.usable, davidson.can_run, davidson.reason) == (8, True, "")
    assert run_readiness(study, "reward", {"min_pairs": 3}).can_run


def test_a_ranking_study_with_one_ranking_cannot_train_and_says_so_in_rankings():
    study = ranking_study([[[0], [1], [2]]])
    readiness = run_readiness(study, "reward")
    assert readiness.reason == "needs 8 usable rankings; has 1"
    assert run_readiness(study, "reward", {"ranking_loss": "split_pairs"}).usable == 3  # 0>1, 0>2, 1>2


def test_rankings_with_everything_tied_or_not_given_are_left_out_and_named():
    study = ranking_study([[[0], [1, 2]], [[0, 1, 2]], "I cannot tell them apart"])
    readiness = run_readiness(study, "reward")
    assert readiness.usable == 1
    assert readiness.counts == "has 1 (1 ranking with everything tied, 1 cannot-rank answer left out)"
    assert run_readiness(study, "reward", {"ranking_loss": "split_pairs"}).usable == 2  # 0>1, 0>2


@pytest.mark.parametrize("config", [{}, {"loss": "davidson"}, {"ranking_loss": "split_pairs"}])
def test_the_count_is_what_the_reward_trainer_would_train_on(config):
    from learning.reward.train import RewardTrainConfig, _prepare

    pairs = pairwise_study(["a", "tie", "both_bad", "b", "tie"])
    ranked = ranking_study([[[0], [1, 2]], [[0, 1, 2]], [[2], [0], [1]], "no idea"])
    trainer_config = replace(RewardTrainConfig(), **config)
    for study in (pairs, ranked):
        prepared = _prepare(preference_pairs(study), ranking_examples(study), trainer_config)
        assert run_readiness(study, "reward", config).usable == len(prepared.items)


def test_a_span_model_counts_the_responses_shown_where_spans_were_asked():
    annotator = UserFactory()
    pairwise = make_study(annotators=[annotator])
    make_items(pairwise, n_prompts=2)
    answer_each(pairwise, annotator, [{"choice": "a"}] * 2)
    assert run_readiness(pairwise, "span_reward").reason == "needs 8 labelled responses; has 0"

    spans = make_study(annotators=[annotator], feedback_kinds=["pairwise", "spans"], name="Spans")
    make_items(spans, n_prompts=5)
    answer_each(spans, annotator, [{"choice": "a", "spans": []}] * 4)  # no span on a response is a clean example
    readiness = run_readiness(spans, "span_reward")
    assert (readiness.usable, readiness.can_run) == (8, True)


def test_a_rating_model_counts_rated_responses_on_the_studys_aspects():
    annotator = UserFactory()
    aspects = [{"key": "clarity"}, {"key": "tone"}]
    study = make_study(annotators=[annotator], feedback_kinds=["ratings"], rating_aspects=aspects)
    make_items(study, n_prompts=3)

    def rate(assignment):
        response = assignment.query.ordered_responses()[0]
        return {"ratings": [{"response": response.pk, "aspect": key, "value": 4} for key in ("clarity", "tone")]}

    answer_each(study, annotator, [rate] * 6)
    assert run_readiness(study, "rating_reward").usable == 6  # two aspects on one response count once
    study.rating_aspects = [{"key": "depth"}]  # an aspect nobody rated: the trainer finds nothing
    assert run_readiness(study, "rating_reward").reason == "needs 8 rated responses; has 0"


def test_every_kind_is_listed_in_order_for_the_dashboard():
    assert [r.kind for r in study_readiness(pairwise_study(["a"]))] == ["reward", "span_reward", "rating_reward"]


def test_a_run_that_could_not_train_is_refused_before_it_is_queued():
    study = pairwise_study(["a", "tie"])
    with pytest.raises(InvalidInput) as refused:
        training_run_start(study=study, requested_by=study.created_by, kind="reward", config={})
    assert refused.value.message == "Nothing was started: a reward model needs 8 usable pairs; has 1 (1 tie left out)."
    api = APIClient()
    api.force_authenticate(study.created_by)
    reply = api.post(f"/api/v1/studies/{study.pk}/runs/", {"kind": "span_reward"}, format="json")
    assert reply.status_code == 400
    assert reply.json()["detail"] == "Nothing was started: a span reward model needs 8 labelled responses; has 0."
    assert not TrainingRun.objects.exists()
