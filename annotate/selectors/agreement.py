"""How far a study's annotators agree: per kind of feedback, for the study and for each annotator.

Reads current labels only (a superseded answer is replaced by its correction; answers to gold
queries are quality control, not data, and are left out) and hands them to
`learning.agreement` as `(item, annotator, value)` records:

- pairwise choices: one nominal unit per query, the choice in canonical order (a, b, tie, both_bad);
- ratings: one ordinal unit per (response, aspect), values 1-5;
- rankings: one nominal unit per pair of responses a ranking orders (ahead, behind, tied), so two
  rankings of the same responses are compared pair by pair; "cannot rank" answers are left out.

Every figure comes with the items (units labelled by two annotators or more) and ratings behind it.
Cohen's κ between two annotators is shown only where they share `min_shared` items or more; a
κ from two or three items says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from annotate.models import PairwiseChoice, RankingPart, RatingPart, Study
from annotate.models.feedback import PairwiseChoiceValue, study_label
from learning import agreement as stats
from learning.agreement import AHEAD, BEHIND, TIED

# Items two annotators must share before their Cohen's κ is shown.
MIN_SHARED = 5
# Each kind: its name in the reply, its label on the dashboard, and the level of measurement of its α.
KINDS = (
    ("choices", "Pairwise choices", "nominal"),
    ("ratings", "Aspect ratings", "ordinal"),
    ("rankings", "Rankings, pair by pair", "nominal"),
)
RATING_VALUES = (1, 2, 3, 4, 5)


def choice_records(study: Study) -> list[tuple]:
    """(query, annotator, canonical choice) for every current pairwise vote."""
    return list(
        PairwiseChoice.objects.filter(study_label(study, "annotation__"))
        .order_by("annotation_id")
        .values_list("annotation__query_id", "annotation__annotator__username", "choice")
    )


def rating_records(study: Study) -> list[tuple]:
    """((response, aspect), annotator, value) for every current aspect rating."""
    rows = (
        RatingPart.objects.filter(study_label(study, "annotation__"))
        .order_by("annotation_id", "id")
        .values_list("response_id", "aspect", "annotation__annotator__username", "value")
    )
    return [((response, aspect), annotator, value) for response, aspect, annotator, value in rows]


def ranking_records(study: Study) -> list[tuple]:
    """((response, response), annotator, order) for every pair of responses in a current ranking."""
    rows = (
        RankingPart.objects.filter(study_label(study, "annotation__"))
        .exclude(groups=[])
        .order_by("annotation_id")
        .values_list("annotation__annotator__username", "groups")
    )
    return [(pair, annotator, order) for annotator, groups in rows for pair, order in stats.ranking_pair_orders(groups)]


def kind_agreement(records: Iterable[tuple], *, level: str, categories, min_shared: int) -> dict:
    """The study-wide figures, and each annotator's, for one kind of feedback."""
    data = stats.reliability_data(records, categories=categories)
    pairs = stats.pairwise_cohen(data, min_shared=min_shared)
    annotators = []
    for annotator in sorted(data.annotators):
        kappas = [
            {"with": second if first == annotator else first, **figure.as_dict()}
            for first, second, figure in pairs
            if annotator in (first, second)
        ]
        annotators.append(
            {
                "annotator": annotator,
                "labels": data.labels_by(annotator),
                "agreement": stats.annotator_agreement(data, annotator).as_dict(),
                "cohen_kappa": sorted(kappas, key=lambda k: k["with"]),
            }
        )
    return {
        "level": level,
        "annotators": len(data.annotators),
        "units": len(data.items),
        "raw_agreement": stats.raw_agreement(data).as_dict(),
        "fleiss_kappa": stats.fleiss_kappa(data).as_dict(),
        "krippendorff_alpha": stats.krippendorff_alpha(data, level=level).as_dict(),
        "cohen_kappa": [{"first": a, "second": b, **figure.as_dict()} for a, b, figure in pairs],
        "per_annotator": annotators,
    }


def study_agreement(study: Study, *, min_shared: int = MIN_SHARED) -> dict:
    """Agreement per kind of feedback the study has labels of; kinds without labels are left out.

    `kinds` maps "choices", "ratings", "rankings" to their figures (see `kind_agreement`); each
    figure is `{value, items, ratings, reason}`, value None with a reason where it is undefined.
    """
    sources = {
        "choices": (choice_records(study), list(PairwiseChoiceValue.values)),
        "ratings": (rating_records(study), list(RATING_VALUES)),
        "rankings": (ranking_records(study), [AHEAD, BEHIND, TIED]),
    }
    kinds = {}
    for name, label, level in KINDS:
        records, categories = sources[name]
        if records:
            kinds[name] = {
                "label": label,
                **kind_agreement(records, level=level, categories=categories, min_shared=min_shared),
            }
    return {"min_shared": min_shared, "kinds": kinds}


def query_agreement(study: Study) -> dict[int, tuple[float, int]]:
    """(share, answers) per query answered by two annotators or more: the share of its current
    answers that give its most given answer.

    The answer is the pairwise choice, or else the ranking (groups compared as sets; a cannot-rank
    answer counts as an answer of its own). Queries labelled once have no agreement and are absent;
    so are answers with neither part (spans, critiques or ratings alone).
    """
    answers: dict[int, list] = {}
    for query, choice in (
        PairwiseChoice.objects.filter(study_label(study, "annotation__")).order_by().values_list("annotation__query_id", "choice")
    ):
        answers.setdefault(query, []).append(choice)
    for query, groups, reason in (
        RankingPart.objects.filter(
            study_label(study, "annotation__"),
            annotation__pairwise__isnull=True,
        )
        .order_by()
        .values_list("annotation__query_id", "groups", "cannot_rank_reason")
    ):
        answers.setdefault(query, []).append("cannot rank" if reason else tuple(frozenset(group) for group in groups))
    return {
        query: (max(given.count(value) for value in set(given)) / len(given), len(given))
        for query, given in answers.items()
        if len(given) >= 2
    }
