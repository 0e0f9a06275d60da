"""Grading answers to gold queries (services.gold) and each annotator's gold accuracy.

An answer is correct when every part of the gold answer is matched: the choice, the ranking (order
within a tied group free), and each gold rating within GOLD_RATING_TOLERANCE points.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from annotate.models import Annotation, Study
from annotate.models.feedback import current_annotation

GOLD_RATING_TOLERANCE = 1


def answer_positions(annotation: Annotation) -> dict:
    """The annotation's gradable parts in query positions, the shape of a gold answer."""
    positions = {qr.response_id: qr.position for qr in annotation.query.query_responses.all()}
    given: dict = {}
    vote = getattr(annotation, "pairwise", None)  # a missing reverse one-to-one raises an AttributeError subclass
    if vote is not None:
        given["choice"] = vote.choice
    ranking = getattr(annotation, "ranking", None)
    if ranking is not None and ranking.groups:
        given["ranking"] = [[positions[r] for r in group] for group in ranking.groups]
    ratings = list(annotation.ratings.all())
    if ratings:
        given["ratings"] = [{} for _ in positions]
        for rating in ratings:
            given["ratings"][positions[rating.response_id]][rating.aspect] = rating.value
    return given


def is_correct(gold: dict, given: dict) -> bool:
    """Whether every part of the gold answer is matched; ties within a ranking group are order-free."""
    if "choice" in gold and given.get("choice") != gold["choice"]:
        return False
    if "ranking" in gold and [sorted(g) for g in given.get("ranking") or []] != [sorted(g) for g in gold["ranking"]]:
        return False
    if "ratings" in gold:
        mine = given.get("ratings") or [{} for _ in gold["ratings"]]
        for expected, got in zip(gold["ratings"], mine, strict=True):
            for aspect, value in expected.items():
                if aspect not in got or abs(got[aspect] - value) > GOLD_RATING_TOLERANCE:
                    return False
    return True


def gold_results(*, study: Study, annotator: AbstractBaseUser | None = None, limit: int | None = None) -> list[tuple[int, bool]]:
    """(annotator id, correct) for each current answer to a gold query, oldest first; the first `limit` only if given."""
    annotations = Annotation.objects.filter(current_annotation(), query__study=study, query__is_gold=True)
    if annotator is not None:
        annotations = annotations.filter(annotator=annotator)
    annotations = (
        annotations.select_related("query", "pairwise", "ranking")
        .prefetch_related("query__query_responses", "ratings")
        .order_by("id")
    )
    if limit is not None:  # qualification reads only its first n answers, on every claim
        annotations = annotations[:limit]
    return [(a.annotator_id, is_correct(a.query.gold_answer, answer_positions(a))) for a in annotations]


@dataclass(frozen=True)
class GoldAccuracy:
    annotator_id: int
    username: str
    answered: int
    correct: int
    accuracy: float
    low: float
    high: float


def gold_accuracy(*, study: Study) -> list[GoldAccuracy]:
    """Each annotator's share of gold answers that were right, with its Wilson 95% interval, by username."""
    from learning.reward.evaluate import wilson_interval  # pure Python, no torch

    tally: dict[int, list[int]] = {}
    for annotator_id, correct in gold_results(study=study):
        counts = tally.setdefault(annotator_id, [0, 0])
        counts[0] += 1
        counts[1] += int(correct)
    names = dict(get_user_model().objects.filter(pk__in=list(tally)).values_list("pk", "username"))
    rows = []
    for annotator_id, (answered, correct) in tally.items():
        low, high = wilson_interval(correct, answered)
        rows.append(GoldAccuracy(annotator_id, names[annotator_id], answered, correct, correct / answered, low, high))
    return sorted(rows, key=lambda row: row.username)
