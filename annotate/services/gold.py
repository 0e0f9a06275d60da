"""Gold questions: queries with a known answer, to measure annotators and to qualify them.

A gold answer is stored in the query's own positions (0 = the first response shown canonically):
  pairwise  {"choice": "a" | "b" | "tie" | "both_bad"}      (a = position 0)
  ranking   {"ranking": [[0], [2, 1]]}                      groups of positions, best first; a group ties
  ratings   {"ratings": [{"helpfulness": 4}, {...}]}        one object per position, aspects 1-5
An answer may give any of these parts the query asks for; an annotator's answer is graded in
annotate.selectors.gold.
"""

from __future__ import annotations

import random

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.errors import Forbidden, InvalidInput
from annotate.models import Query, Study
from annotate.models.feedback import PairwiseChoiceValue
from annotate.models.studies import FeedbackKind
from annotate.numbers import is_int
from annotate.selectors.gold import gold_results
from annotate.services.study_status import refuse_if_archived

GOLD_KINDS = {"choice": FeedbackKind.PAIRWISE, "ranking": FeedbackKind.RANKING, "ratings": FeedbackKind.RATINGS}


def gold_answer_check(*, query: Query, answer, size: int) -> dict:
    """The gold answer checked against the query (of `size` responses); errors name the field as gold.<part>."""
    if not isinstance(answer, dict) or not answer:
        raise InvalidInput("gold must be an object with choice, ranking or ratings.", field="gold")
    asks = query.asks or [query.kind]
    for key in answer:
        if key not in GOLD_KINDS:
            raise InvalidInput(f"gold.{key} is not a gold part (known: {', '.join(GOLD_KINDS)}).", field=f"gold.{key}")
        if GOLD_KINDS[key] not in asks:
            raise InvalidInput(f"gold.{key}: this query does not ask for {GOLD_KINDS[key]}.", field=f"gold.{key}")
    if "choice" in answer and answer["choice"] not in PairwiseChoiceValue.values:
        raise InvalidInput(
            f"gold.choice {answer['choice']!r} is not one of {', '.join(PairwiseChoiceValue.values)}.", field="gold.choice"
        )
    if "ranking" in answer:
        groups = answer["ranking"]
        flat = (
            [p for g in groups for p in g]
            if isinstance(groups, list) and all(isinstance(g, list) and g for g in groups)
            else None
        )
        if not flat or not all(is_int(p) for p in flat) or sorted(flat) != list(range(size)):
            raise InvalidInput(
                f"gold.ranking must be non-empty groups of the positions 0..{size - 1}, each once, best first.",
                field="gold.ranking",
            )
    if "ratings" in answer:
        check_gold_ratings(answer["ratings"], size=size, aspects=[a["key"] for a in query.study.rating_aspects])
    return answer


def check_gold_ratings(value, *, size: int, aspects: list[str]) -> None:
    if not isinstance(value, list) or len(value) != size or not all(isinstance(item, dict) and item for item in value):
        raise InvalidInput(f"gold.ratings must be {size} objects of aspect: value, one per position.", field="gold.ratings")
    for position, item in enumerate(value):
        for aspect, rating in item.items():
            if aspect not in aspects:
                raise InvalidInput(
                    f"gold.ratings[{position}]: {aspect!r} is not one of the study's aspects ({', '.join(aspects)}).",
                    field="gold.ratings",
                )
            if not is_int(rating) or not 1 <= rating <= 5:
                raise InvalidInput(f"gold.ratings[{position}].{aspect} must be a whole number 1-5.", field="gold.ratings")


@transaction.atomic
def query_mark_gold(*, query: Query, answer: dict | None) -> Query:
    """Make the query gold with this answer (checked), or, with None, an ordinary query again."""
    refuse_if_archived(query.study, "marking gold questions")
    if answer is None:
        query.is_gold, query.gold_answer = False, None
    else:
        size = len(query.ordered_responses())
        query.is_gold, query.gold_answer = True, gold_answer_check(query=query, answer=answer, size=size)
    query.save(update_fields=["is_gold", "gold_answer"])
    return query


class NotQualified(Forbidden):
    """The annotator failed the study's qualification: no real queries for them."""


def gold_plan(*, study: Study, annotator: AbstractBaseUser, rng: random.Random | None = None) -> str:
    """What the next claim serves: "real", "gold" (gold first, then real) or "gold_only" (qualifying).

    Raises NotQualified when the annotator's first `qualification_items` gold answers fall below
    the pass mark. Reads nothing for a study without gold settings, so the usual claim costs no more.
    """
    n = study.qualification_items
    if n:
        results = gold_results(study=study, annotator=annotator, limit=n)
        if len(results) < n:
            return "gold_only"
        accuracy = sum(correct for _, correct in results) / n
        if accuracy < study.qualification_pass:
            raise NotQualified(
                f"You did not qualify for this study: {accuracy:.0%} of your first {n} gold answers were right, "
                f"and {study.qualification_pass:.0%} was needed."
            )
    if study.gold_rate > 0 and (rng or random.SystemRandom()).random() < study.gold_rate:
        return "gold"
    return "real"
