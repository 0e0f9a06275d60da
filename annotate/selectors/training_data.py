"""The labels a training run learns from, as plain `learning` data."""

from __future__ import annotations

from annotate.models import Study
from annotate.selectors.labels import annotator_pseudonym, pairwise_votes, vote_responses


def preference_pairs(study: Study) -> list:
    """Every a/b pairwise vote as a PreferencePair; ties and both-bad carry no order for BT."""
    from learning.data import PreferencePair, strength_to_margin

    pairs = []
    for vote in pairwise_votes(study).filter(choice__in=["a", "b"]).iterator(chunk_size=500):
        first, second = vote_responses(vote)
        chosen, rejected = (first, second) if vote.choice == "a" else (second, first)
        annotation = vote.annotation
        pairs.append(
            PreferencePair(
                prompt=annotation.query.prompt.messages,
                chosen=chosen.text,
                rejected=rejected.text,
                margin=strength_to_margin(vote.strength),
                group=str(annotation.query.prompt_id),
                annotator=annotator_pseudonym(study.pk, annotation.annotator_id),
            )
        )
    return pairs
