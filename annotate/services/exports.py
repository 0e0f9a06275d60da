"""Turning stored labels into datasets: TRL preference rows, or every vote as given."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from annotate.errors import InvalidInput
from annotate.models import Study
from annotate.selectors.labels import annotator_pseudonym, pairwise_votes, vote_responses

EXPORT_FORMATS = ("trl", "raw")
ITER_CHUNK = 500


@dataclass
class Export:
    """Rows to write (a generator, consumed once) and the counts known before writing."""

    format: str
    rows: Iterator[dict]
    counts: dict = field(default_factory=dict)


def assistant_turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def trl_rows(study: Study) -> Iterator[dict]:
    from learning.data import strength_to_margin

    for vote in pairwise_votes(study).filter(choice__in=["a", "b"]).iterator(chunk_size=ITER_CHUNK):
        first, second = vote_responses(vote)
        chosen, rejected = (first, second) if vote.choice == "a" else (second, first)
        annotation = vote.annotation
        yield {
            "prompt": annotation.query.prompt.messages,
            "chosen": assistant_turn(chosen.text),
            "rejected": assistant_turn(rejected.text),
            "margin": strength_to_margin(vote.strength),
            "strength": vote.strength,
            "query_id": annotation.query_id,
            "prompt_id": annotation.query.prompt.external_id,
            "annotator": annotator_pseudonym(study.pk, annotation.annotator_id),
            "annotation_id": annotation.pk,
        }


def raw_rows(study: Study) -> Iterator[dict]:
    for vote in pairwise_votes(study).iterator(chunk_size=ITER_CHUNK):
        annotation = vote.annotation
        responses = vote_responses(vote)
        yield {
            "annotation_id": annotation.pk,
            "query_id": annotation.query_id,
            "kind": annotation.query.kind,
            "prompt_id": annotation.query.prompt.external_id,
            "prompt": annotation.query.prompt.messages,
            "responses": [{"id": r.pk, "text": r.text} for r in responses],
            "annotator": annotator_pseudonym(study.pk, annotation.annotator_id),
            "choice": vote.choice,
            "strength": vote.strength,
            "shown_choice": vote.shown_choice,
            "display_order": annotation.assignment.display_order if annotation.assignment else None,
            "time_spent_ms": annotation.time_spent_ms,
            "created_at": annotation.created_at.isoformat(),
        }


def export_build(*, study: Study, format: str) -> Export:
    """Prepare an export; TRL leaves ties and both-bad out and counts them."""
    if format not in EXPORT_FORMATS:
        raise InvalidInput(f"Unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}.", field="format")
    votes = pairwise_votes(study)
    if format == "trl":
        counts = {
            "rows": votes.filter(choice__in=["a", "b"]).count(),
            "skipped_ties": votes.filter(choice="tie").count(),
            "skipped_both_bad": votes.filter(choice="both_bad").count(),
        }
        return Export(format=format, rows=trl_rows(study), counts=counts)
    return Export(format=format, rows=raw_rows(study), counts={"rows": votes.count()})
