"""The labels a training run learns from, as plain `learning` data."""

from __future__ import annotations

from collections import defaultdict

from annotate.models import Prompt, Study
from annotate.models.studies import MISSING_INFORMATION, FeedbackKind
from annotate.selectors.labels import (
    annotation_responses,
    annotations_with_parts,
    annotator_pseudonym,
    pairwise_votes,
    rankings,
    vote_responses,
)


def eval_groups(study: Study) -> list[str]:
    """The group ids (prompt ids, as the examples below carry them) of the study's eval prompts."""
    return [str(pk) for pk in Prompt.objects.filter(study=study, split="eval").values_list("pk", flat=True)]


def preference_pairs(study: Study) -> list:
    """Every a/b vote as a PreferencePair, and every tie as a tied one (only Davidson learns from ties).

    Both-bad says nothing about order and is left out.
    """
    from learning.data import PreferencePair, strength_to_margin

    pairs = []
    for vote in pairwise_votes(study).filter(choice__in=["a", "b", "tie"]).iterator(chunk_size=500):
        first, second = vote_responses(vote)
        chosen, rejected = (second, first) if vote.choice == "b" else (first, second)
        annotation = vote.annotation
        tie = vote.choice == "tie"
        pairs.append(
            PreferencePair(
                prompt=annotation.query.prompt.messages,
                chosen=chosen.text,
                rejected=rejected.text,
                margin=0.0 if tie else strength_to_margin(vote.strength),  # used when strength_margin is set
                group=str(annotation.query.prompt_id),
                annotator=annotator_pseudonym(annotation.annotator_id),
                tie=tie,
            )
        )
    return pairs


def ranking_examples(study: Study) -> list:
    """Every ranking given (cannot-rank answers left out), as indices into the query's responses."""
    from learning.data import RankingExample

    examples = []
    for part in rankings(study).filter(cannot_rank_reason="").iterator(chunk_size=500):
        responses = annotation_responses(part.annotation)
        index = {response.pk: i for i, response in enumerate(responses)}
        examples.append(
            RankingExample(
                prompt=part.annotation.query.prompt.messages,
                responses=[r.text for r in responses],
                groups=[[index[rid] for rid in group] for group in part.groups],
                group=str(part.annotation.query.prompt_id),
                annotator=annotator_pseudonym(part.annotation.annotator_id),
            )
        )
    return examples


def span_examples(study: Study) -> list:
    """One SpanExample per response shown in an annotation that asked for spans.

    A response with no span is a clean example, not a missing one. Response-level labels
    (missing information) cover no characters and are left out.
    """
    from learning.data import SpanExample

    examples = []
    for annotation in annotations_with_parts(study).iterator(chunk_size=200):
        if FeedbackKind.SPANS not in annotation.query.asks:
            continue
        by_response = defaultdict(list)
        for span in annotation.spans.all():
            if span.category != MISSING_INFORMATION:
                by_response[span.response_id].append((span.start, span.end, span.category))
        for response in annotation_responses(annotation):
            examples.append(
                SpanExample(
                    prompt=annotation.query.prompt.messages,
                    response=response.text,
                    spans=by_response[response.pk],
                    group=str(annotation.query.prompt_id),
                )
            )
    return examples


def rating_examples(study: Study) -> list:
    """One RatingExample per (annotation, response) with its aspects' values."""
    from learning.data import RatingExample

    examples = []
    for annotation in annotations_with_parts(study).iterator(chunk_size=200):
        by_response = defaultdict(dict)
        for rating in annotation.ratings.all():
            by_response[rating.response_id][rating.aspect] = rating.value
        texts = {r.pk: r.text for r in annotation_responses(annotation)}
        for response_id, values in by_response.items():
            examples.append(
                RatingExample(
                    prompt=annotation.query.prompt.messages,
                    response=texts[response_id],
                    ratings=values,
                    group=str(annotation.query.prompt_id),
                )
            )
    return examples
