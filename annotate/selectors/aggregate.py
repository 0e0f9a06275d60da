"""One label per pairwise query from all its current votes, by one of three aggregates.

- `majority`: the most given of a / b / tie; a split between them is a tie (learning.aggregate.majority_vote).
  Confidence: the share of the query's votes that gave the label.
- `dawid_skene`: Dawid-Skene over {a, b, tie}, which learns each annotator's confusion matrix, so a
  careless annotator's votes count for less. Confidence: the label's posterior.
- `bt_reliability`: a Bradley-Terry model over the study's responses with a reliability per annotator,
  fitted on the a/b votes (ties carry no order); the query's label is the response with the higher
  score, so a pair also learns from the other pairs of its prompt. A query with only tie votes stays
  a tie. Confidence: σ(score difference).

Both-bad votes say nothing about which response is better: every aggregate leaves them out (counted).
Labels are in canonical order (a = the query's first response), as PairwiseChoice stores them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from annotate.models import PairwiseChoice, QueryResponse, Study
from annotate.models.feedback import study_label
from learning import aggregate

AGGREGATES = ("majority", "dawid_skene", "bt_reliability")


@dataclass(frozen=True)
class PairLabel:
    """A query's aggregated label (a, b or tie), how sure the aggregate is, and whose votes it rests on."""

    query_id: int
    label: str
    confidence: float
    votes: int
    annotator_ids: tuple[int, ...]


@dataclass(frozen=True)
class PairLabels:
    labels: list[PairLabel]
    both_bad_votes: int


def pair_labels(study: Study, method: str) -> PairLabels:
    """Every pairwise query with a current a / b / tie vote, labelled by `method` (one of AGGREGATES), in query order."""
    if method not in AGGREGATES:
        raise ValueError(f"unknown aggregate {method!r}; known: {AGGREGATES}")
    votes = list(
        PairwiseChoice.objects.filter(study_label(study, "annotation__"))
        .order_by("annotation_id")
        .values_list("annotation__query_id", "annotation__annotator_id", "choice")
    )
    both_bad = sum(1 for _, _, choice in votes if choice == "both_bad")
    votes = [vote for vote in votes if vote[2] != "both_bad"]
    per_query: dict[int, list[tuple[int, str]]] = {}
    for query, annotator, choice in votes:
        per_query.setdefault(query, []).append((annotator, choice))
    if method == "majority":
        decided = {
            q: (label, share(per_query[q], label)) for q, label in aggregate.majority_vote((q, c) for q, _, c in votes).items()
        }
    elif method == "dawid_skene":
        fit = aggregate.dawid_skene(votes)
        decided = {q: (label, fit.posteriors[q][label]) for q, label in fit.labels.items()}
    else:
        decided = bt_labels(per_query)
    labels = [
        PairLabel(q, label, confidence, len(per_query[q]), tuple(sorted({a for a, _ in per_query[q]})))
        for q, (label, confidence) in sorted(decided.items())
    ]
    return PairLabels(labels, both_bad)


def share(votes: list[tuple[int, str]], label: str) -> float:
    return sum(1 for _, choice in votes if choice == label) / len(votes)


def bt_labels(per_query: dict[int, list[tuple[int, str]]]) -> dict[int, tuple[str, float]]:
    """Labels from a Bradley-Terry fit with per-annotator reliability over the queries' responses."""
    pairs: dict[int, list[int]] = {}
    rows = QueryResponse.objects.filter(query_id__in=list(per_query), position__lt=2).order_by("query_id", "position")
    for query, response in rows.values_list("query_id", "response_id"):
        pairs.setdefault(query, []).append(response)
    comparisons = []
    for query, votes in per_query.items():
        first, second = pairs[query]
        for annotator, choice in votes:
            if choice == "a":
                comparisons.append((annotator, first, second))
            elif choice == "b":
                comparisons.append((annotator, second, first))
    scores = aggregate.bt_reliability(comparisons).scores if comparisons else {}
    decided = {}
    for query in per_query:
        first, second = pairs[query]
        if first not in scores or second not in scores or scores[first] == scores[second]:
            decided[query] = ("tie", share(per_query[query], "tie"))
            continue
        gap = scores[first] - scores[second]
        decided[query] = ("a" if gap > 0 else "b", 1.0 / (1.0 + math.exp(-abs(gap))))
    return decided
