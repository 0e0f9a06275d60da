"""Factories for tests: users, and studies with members and imported items made through the services."""

from __future__ import annotations

import json
import math

import factory
from django.contrib.auth import get_user_model

from annotate.services.items import items_import
from annotate.services.splits import EVAL_FRACTION
from annotate.services.studies import membership_add, study_create

# A study's fixed split puts each prompt in eval with probability EVAL_FRACTION, by a hash of the
# study's id (which depends on how many studies the run made before) and the prompt's id. Tests that
# need prompts on both sides make this many: the eval side is empty with probability
# (1 - EVAL_FRACTION)**n < 1e-6 (62 prompts: 9.8e-7), and the train side far less often.
BOTH_SIDES_PROMPTS = math.ceil(math.log(1e-6) / math.log(1 - EVAL_FRACTION))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


def make_study(*, manager=None, annotators=(), researchers=(), overlap: int = 1, name: str = "Study", **fields):
    manager = manager or UserFactory()
    study = study_create(creator=manager, name=name, overlap=overlap, **fields)
    for user in annotators:
        membership_add(study=study, username=user.username, role="annotator")
    for user in researchers:
        membership_add(study=study, username=user.username, role="researcher")
    return study


def make_run(study, kind: str = "reward", **config):
    """A run recorded as queued, as training_run_start records it but without asking whether it can train.

    For tests of what the worker does with a run however it came to be queued (labels can be
    corrected away between the request and the worker).
    """
    from annotate.models import TrainingRun

    config = {"base_model": study.reward_model, **config}
    return TrainingRun.objects.create(
        study=study, kind=kind, config=config, created_by=study.created_by, message="Waiting for a worker"
    )


def jsonl(records: list[dict]) -> list[str]:
    return [json.dumps(r) for r in records]


def make_items(study, n_prompts: int = 3, n_responses: int = 2, prefix: str = "p"):
    records = [
        {
            "id": f"{prefix}{i}",
            "prompt": f"Question {i}: what is {i} + {i}?",
            "responses": [f"Answer {j} to question {i}: {2 * i + j}" for j in range(n_responses)],
        }
        for i in range(n_prompts)
    ]
    return items_import(study=study, lines=jsonl(records))


def make_answer(query, annotator, *, choice=None, ranking=None, cannot_rank="", ratings=(), supersedes=None):
    """An annotation stored directly (no assignment), with the parts given: a canonical pairwise
    `choice`, a `ranking` (groups of response ids) or `cannot_rank`, `ratings` as (response, aspect, value).

    For reads over many annotators' answers to the same queries, which the claim loop would hand
    out in an order of its own choosing.
    """
    from annotate.models import Annotation, PairwiseChoice, RankingPart, RatingPart

    annotation = Annotation.objects.create(
        query=query, annotator=annotator, client_key=f"direct-{Annotation.objects.count()}", supersedes=supersedes
    )
    if choice is not None:
        strength = 2 if choice in ("a", "b") else None  # a tie or both-bad has no strength
        PairwiseChoice.objects.create(annotation=annotation, choice=choice, shown_choice=choice, strength=strength)
    if ranking is not None or cannot_rank:
        RankingPart.objects.create(annotation=annotation, groups=ranking or [], cannot_rank_reason=cannot_rank)
    for response, aspect, value in ratings:
        RatingPart.objects.create(annotation=annotation, response=response, aspect=aspect, value=value)
    return annotation


def split_given(study, eval_queries) -> None:
    """Give the study's prompts their sides of the fixed split now: the prompts of `eval_queries` eval, all others train.

    `study_split_assign` keeps a side once given, so the study's runs use this split, whatever the
    study's id hashes to: for tests of a few labels, which could otherwise all land on one side.
    """
    from annotate.models import Prompt

    eval_prompts = [query.prompt_id for query in eval_queries]
    Prompt.objects.filter(study=study).update(split="train")
    Prompt.objects.filter(study=study, pk__in=eval_prompts).update(split="eval")
