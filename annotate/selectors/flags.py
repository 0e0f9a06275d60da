"""Bias flags per annotator and per annotation: evidence of shortcuts for a manager, shown with their numbers.

Current answers only (a superseded answer gives way to its correction), and no answers to gold
queries: those measure annotators against a known answer (selectors.gold). The statistics live in
`learning.flags`; this module reads the labels and names what each flag rests on:

- too_fast (per answer): answered (active time, else server time) under the reading floor of its
  responses' words; the annotator's flag is raised when TOO_FAST_SHARE of their answers are.
- position (per annotator): the share of a/b votes for the response shown first, two-sided exact
  binomial test against ½.
- length (per annotator): the share of a/b votes, between responses of different lengths in
  characters, for the longer one, tested against the other annotators' share; raised only above it.
- straight_line (per annotator): the share of answers with ratings whose every rating has one value.
- cycle (per answer): a vote on an intransitive cycle (A>B, B>C, C>A) among the annotator's votes on
  one prompt.

An answer is flagged with its own flags (too_fast, cycle) and with its annotator's raised ones
(position, length, straight_line), which is what the exports' `exclude_flagged` filter reads.
"""

from __future__ import annotations

from collections import defaultdict

from annotate.models import Annotation, PairwiseChoice, QueryResponse, RatingPart, Study
from annotate.models.feedback import study_data_query, study_label
from annotate.selectors.labels import annotator_pseudonym
from learning import flags as stats

FLAGS = ("too_fast", "position", "length", "straight_line", "cycle")
# Flags raised on an annotator that mark every one of their answers.
ANNOTATOR_FLAGS = ("position", "length", "straight_line")


def query_responses(study: Study) -> dict[int, list[tuple[int, str]]]:
    """Each query's (response id, text) in canonical position order."""
    responses: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for query_id, response_id, text in (
        QueryResponse.objects.filter(study_data_query(study, "query__"))
        .order_by("query_id", "position")
        .values_list("query_id", "response_id", "response__text")
    ):
        responses[query_id].append((response_id, text))
    return responses


def study_flags(study: Study) -> dict:
    """Every annotator's flags with their numbers, and the flags of every flagged current answer.

    `annotators`: [{annotator, pseudonym, answers, flags: {name: figures with `raised`}, raised: [names]}];
    `annotations`: {annotation id: [flag names]} for flagged answers only.
    """
    responses = query_responses(study)
    answers = list(
        Annotation.objects.filter(study_label(study))
        .order_by("id")
        .values_list("id", "annotator_id", "annotator__username", "query_id", "active_ms", "time_spent_ms")
    )
    votes = list(
        PairwiseChoice.objects.filter(study_label(study, "annotation__"))
        .order_by("annotation_id")
        .values_list(
            "annotation_id",
            "annotation__annotator_id",
            "annotation__query_id",
            "annotation__query__prompt_id",
            "choice",
            "shown_choice",
        )
    )
    ratings: dict[int, list[int]] = defaultdict(list)
    for annotation_id, value in (
        RatingPart.objects.filter(study_label(study, "annotation__"))
        .order_by("annotation_id", "id")
        .values_list("annotation_id", "value")
    ):
        ratings[annotation_id].append(value)

    own: dict[int, list[str]] = defaultdict(list)
    names: dict[int, str] = {}
    by_annotator: dict[int, list[int]] = defaultdict(list)
    for annotation_id, annotator, username, query_id, active_ms, time_spent_ms in answers:
        names[annotator] = username
        by_annotator[annotator].append(annotation_id)
        words = sum(len(text.split()) for _, text in responses[query_id])
        if stats.is_too_fast(active_ms if active_ms is not None else time_spent_ms, words):
            own[annotation_id].append("too_fast")

    sided = [v for v in votes if v[4] in ("a", "b")]
    longer_picks: dict[int, list[bool]] = defaultdict(list)
    shown_by: dict[int, list[str]] = defaultdict(list)
    edges: dict[tuple[int, int], dict[tuple[int, int], list[int]]] = defaultdict(lambda: defaultdict(list))
    for annotation_id, annotator, query_id, prompt_id, choice, shown in sided:
        shown_by[annotator].append(shown)
        (first, first_text), (second, second_text) = responses[query_id][:2]
        if len(first_text) != len(second_text):
            longer_picks[annotator].append((choice == "a") == (len(first_text) > len(second_text)))
        edge = (first, second) if choice == "a" else (second, first)
        edges[(annotator, prompt_id)][edge].append(annotation_id)
    for graph in edges.values():
        for edge in stats.cycle_edges(graph):
            for annotation_id in graph[edge]:
                own[annotation_id].append("cycle")

    all_picks = sum(len(picks) for picks in longer_picks.values())
    all_longer = sum(sum(picks) for picks in longer_picks.values())
    annotators = []
    for annotator in sorted(names, key=lambda a: names[a]):
        mine = by_annotator[annotator]
        fast = sum(1 for a in mine if "too_fast" in own[a])
        shown = shown_by[annotator]
        picks = longer_picks[annotator]
        others_n, others_k = all_picks - len(picks), all_longer - sum(picks)
        rated = [values for a in mine if len(values := ratings.get(a, [])) >= 2]
        straight = sum(1 for values in rated if stats.is_straight_lined(values))
        in_cycles = sum(1 for a in mine if "cycle" in own[a])
        figures = {
            "too_fast": {
                "n": len(mine),
                "k": fast,
                "rate": fast / len(mine),
                "threshold": stats.TOO_FAST_SHARE,
                "floor_words_per_minute": stats.FLOOR_WORDS_PER_MINUTE,
                "raised": fast > 0 and fast / len(mine) >= stats.TOO_FAST_SHARE,
            },
            "position": stats.binomial_flag(shown.count("a"), len(shown), 0.5, expected_label="expected_rate"),
            "length": length_figures(picks, others_k, others_n),
            "straight_line": {
                "n": len(rated),
                "k": straight,
                "rate": straight / len(rated) if rated else None,
                "threshold": stats.STRAIGHT_SHARE,
                "min_answers": stats.STRAIGHT_MIN_ANSWERS,
                "raised": len(rated) >= stats.STRAIGHT_MIN_ANSWERS and straight / len(rated) >= stats.STRAIGHT_SHARE,
            },
            "cycle": {"n": len(shown), "k": in_cycles, "raised": in_cycles > 0},
        }
        raised = [name for name in FLAGS if figures[name]["raised"]]
        for name in ANNOTATOR_FLAGS:
            if name in raised:
                for a in mine:
                    own[a].append(name)
        annotators.append(
            {
                "annotator": names[annotator],
                "pseudonym": annotator_pseudonym(annotator),
                "answers": len(mine),
                "flags": figures,
                "raised": raised,
            }
        )
    flagged = {a: sorted(set(found), key=FLAGS.index) for a, found in own.items() if found}
    return {"flags": list(FLAGS), "alpha": stats.ALPHA, "annotators": annotators, "annotations": flagged}


def length_figures(picks: list[bool], others_k: int, others_n: int) -> dict:
    """The length flag: the annotator's picks of the longer response against the other annotators' share
    (`others_k` of their `others_n` votes between responses of different lengths)."""
    if not others_n:
        return {
            "n": len(picks),
            "k": sum(picks),
            "rate": sum(picks) / len(picks) if picks else None,
            "study_rate": None,
            "p_value": None,
            "alpha": stats.ALPHA,
            "raised": False,
            "reason": "No other annotator's votes between responses of different lengths to compare with.",
        }
    study_rate = others_k / others_n
    return stats.binomial_flag(sum(picks), len(picks), study_rate, expected_label="study_rate", above_only=True)


def annotation_flags(study: Study) -> dict[int, list[str]]:
    """The flags of every flagged current answer of the study, by annotation id."""
    return study_flags(study)["annotations"]


def flagged_annotations(study: Study, names: tuple[str, ...]) -> frozenset[int]:
    """The current answers with any of the bias flags `names`."""
    return frozenset(a for a, found in annotation_flags(study).items() if set(found) & set(names))
