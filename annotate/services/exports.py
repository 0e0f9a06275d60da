"""Turning stored labels into datasets: one JSON object per row, streamed, with counts known up front.

Every format but raw reads current annotations only (a superseded one gives way to its correction)
and names annotators by a pseudonym, the same in every study of the deployment. Rows built from one
annotation end with where they came from: `annotation_id`, `query_id`, `prompt_id` (the id given at import), `annotator`,
and the `round` and `strategy` that chose the query (0 and "import" outside the round loop).
Prompts are chat messages [{role, content}]; responses, chosen and rejected are plain text
except in TRL's formats, where they are one assistant turn.

trl: TRL's conversational preference rows
    {prompt, chosen, rejected, margin, source, strength, rank_gap, ...}, every key in every row.
    source "pairwise": an a/b vote; margin from its strength (learning.data.strength_to_margin).
        Ties and both-bad carry no order: left out, counted.
    source "ranking": every ordered pair of responses in different groups of a ranking, the better
        group's response chosen; pairs within a group (ties) are skipped. margin is 0.0: a ranking
        says which is better, not by how much; rank_gap (1 = adjacent groups) is there for anyone who
        wants a margin of their own. Cannot-rank answers give no rows (counted).
    source "revision": a critique's revision chosen over the response it revises, margin 0.0. An
        empty revision, or one equal to the response (imported data has a few), is left out (counted).
    strength is null except for pairwise rows, rank_gap null except for ranking rows.
rankings: {prompt, responses: [{id, text}] in the query's order, ranking: groups of response ids,
    best first, cannot_rank_reason, ...}. A cannot-rank answer is kept, with ranking [] and its
    reason (the raw answer is never dropped); the count of them comes as a header.
spans: FineGrainedRLHF's qa_feedback shape, one row per response of every annotation whose query
    asked for spans: {prompt, question, response, response_id, feedback: {errors: [{error type,
    explanation, start, end}], missing-info: [...]}, ...}. A response without spans is a row with
    empty lists: the annotator looked and found nothing. error type is the taxonomy label (an
    imported span keeps its original string); start/end are code-point offsets into response.
critiques: {prompt, response, response_id, critique, revision, ...}; revision is "" when none.
ratings: one row per response an annotation rated: {prompt, response, response_id,
    ratings: {aspect: value}, ...}.
kto: TRL's unpaired rows {prompt, completion, label, source, ...}, as TRL's unpair_preference_dataset
    turns pairs into them: pairwise a/b -> chosen true, rejected false; both-bad -> both false;
    tie -> left out (counted). Ranking -> every response of the top group true, of the bottom group
    false, middle groups left out; a ranking that ties everything, or cannot-rank, gives nothing
    (counted). Revision -> revision true, the original false (same rules as trl).
trl and kto take `sources` (any of pairwise, ranking, revision; default all).
trl with `aggregate` (majority, dawid_skene or bt_reliability; see annotate.selectors.aggregate):
    one row per pairwise query instead of one per vote, from all its current votes: {prompt, chosen,
    rejected, margin 0.0 (an aggregate says which is better, not by how much), source "pairwise",
    strength null, rank_gap null, aggregate, confidence, votes, query_id, prompt_id, annotators (their
    pseudonyms)}. Pairwise votes only (sources, if given, must be pairwise); queries whose aggregate
    is a tie are left out (skipped_ties), as are both-bad votes (skipped_both_bad).
raw: every annotation as given, with all its parts, superseded ones included: {annotation_id,
    query_id, round, strategy, kind, asks, prompt_id, prompt, responses, annotator, display_order, time_spent_ms,
    active_ms, created_at, supersedes (the annotation this one changed, or null), superseded_by (the
    one that changed it, or null), rejected (a reviewer rejected it: {review, note}, or null), current
    (false once superseded or rejected), pairwise: {choice, strength,
    shown_choice} or null, ranking: {groups, cannot_rank_reason} or null, spans: [{response, start,
    end, category, note, metadata}], critiques: [{response, critique, revision}], ratings: [{response,
    aspect, value}], flags: the answer's bias flags (annotate.selectors.flags; [] for a superseded
    one)}. The X-Preflab-Superseded header counts the superseded rows, rejected ones included.
Every format whose rows name an annotation (all but fgrlhf and aggregated trl) takes `exclude_flagged`:
    "1" leaves out the rows of answers with any bias flag, or a comma list (too_fast,cycle) those with
    one of the flags named; X-Preflab-Flagged-Excluded counts the rows left out, and Rows what is left.
fgrlhf: the qa_feedback file's own record shape, one per prompt and annotator; see
    annotate.services.fgrlhf, which also imports it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Count, F

from annotate.errors import InvalidInput
from annotate.models import Annotation, Query, QueryResponse, Study
from annotate.models.feedback import current_annotation, study_data_query, study_label
from annotate.models.studies import FeedbackKind
from annotate.selectors import labels
from annotate.selectors.aggregate import AGGREGATES, PairLabels, pair_labels
from annotate.selectors.flags import FLAGS, annotation_flags, flagged_annotations
from annotate.selectors.labels import annotation_responses, annotator_pseudonym
from annotate.services import fgrlhf

EXPORT_FORMATS = ("trl", "rankings", "spans", "critiques", "ratings", "kto", "raw", "fgrlhf")
PREFERENCE_SOURCES = ("pairwise", "ranking", "revision")
ITER_CHUNK = 500


@dataclass
class Export:
    """Rows to write (a generator, consumed once) and the counts known before writing."""

    format: str
    rows: Iterator[dict]
    counts: dict = field(default_factory=dict)


def assistant_turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def provenance(study: Study, annotation: Annotation) -> dict:
    return {
        "annotation_id": annotation.pk,
        "query_id": annotation.query_id,
        "prompt_id": annotation.query.prompt.external_id,
        "annotator": annotator_pseudonym(annotation.annotator_id),
        **chosen_by(annotation),
    }


def chosen_by(annotation: Annotation) -> dict:
    """The round and strategy that chose the label's query (0 and "import" for one asked outside the round loop),
    also when a rejection later moved the query into another round to be answered again."""
    return {"round": annotation.query.round_chosen_in, "strategy": annotation.query.strategy}


def ranking_pairs(groups: list[list[int]]) -> Iterator[tuple[int, int, int]]:
    """(better, worse, rank gap) for every pair of responses in different groups; tied pairs are skipped."""
    for g, better in enumerate(groups):
        for gap, worse_group in enumerate(groups[g + 1 :], start=1):
            for winner in better:
                for loser in worse_group:
                    yield winner, loser, gap


def ranking_pair_count(groups: list[list[int]]) -> int:
    """How many rows ranking_pairs yields, without yielding them (for the counts sent before the rows)."""
    sizes = [len(group) for group in groups]
    return sum(a * b for a, b in itertools.combinations(sizes, 2))


# --- preference rows: trl and kto ----------------------------------------------------------


def trl_row(
    study: Study,
    annotation: Annotation,
    chosen: str,
    rejected: str,
    *,
    source: str,
    margin: float,
    strength: int | None = None,
    rank_gap: int | None = None,
) -> dict:
    """Every trl row has every key, so a reader that infers one schema (datasets' JSON loader) takes them all."""
    return {
        "prompt": annotation.query.prompt.messages,
        "chosen": assistant_turn(chosen),
        "rejected": assistant_turn(rejected),
        "margin": margin,
        "source": source,
        "strength": strength,
        "rank_gap": rank_gap,
        **provenance(study, annotation),
    }


def trl_rows(study: Study, sources: tuple[str, ...]) -> Iterator[dict]:
    from learning.data import strength_to_margin

    if "pairwise" in sources:
        for vote in labels.pairwise_votes(study).filter(choice__in=["a", "b"]).iterator(chunk_size=ITER_CHUNK):
            first, second = labels.vote_responses(vote)
            chosen, rejected = (first, second) if vote.choice == "a" else (second, first)
            yield trl_row(
                study,
                vote.annotation,
                chosen.text,
                rejected.text,
                source="pairwise",
                margin=strength_to_margin(vote.strength),
                strength=vote.strength,
            )
    if "ranking" in sources:
        for ranking in labels.rankings(study).iterator(chunk_size=ITER_CHUNK):
            texts = {r.pk: r.text for r in annotation_responses(ranking.annotation)}
            for winner, loser, gap in ranking_pairs(ranking.groups):
                yield trl_row(study, ranking.annotation, texts[winner], texts[loser], source="ranking", margin=0.0, rank_gap=gap)
    if "revision" in sources:
        for critique in labels.revisions(study).iterator(chunk_size=ITER_CHUNK):
            yield trl_row(study, critique.annotation, critique.revision, critique.response.text, source="revision", margin=0.0)


def aggregated_trl_rows(study: Study, method: str, decided: PairLabels) -> Iterator[dict]:
    """One trl row per query whose aggregate is a or b, in query order (see the module's docstring)."""
    ordered = [label for label in decided.labels if label.label in ("a", "b")]
    for start in range(0, len(ordered), ITER_CHUNK):
        chunk = ordered[start : start + ITER_CHUNK]
        queries = (
            Query.objects.select_related("prompt")
            .prefetch_related(labels.query_responses("query_responses"))
            .in_bulk([label.query_id for label in chunk])
        )
        for label in chunk:
            query = queries[label.query_id]
            first, second = (qr.response for qr in sorted(query.query_responses.all(), key=lambda qr: qr.position))
            chosen, rejected = (first, second) if label.label == "a" else (second, first)
            yield {
                "prompt": query.prompt.messages,
                "chosen": assistant_turn(chosen.text),
                "rejected": assistant_turn(rejected.text),
                "margin": 0.0,
                "source": "pairwise",
                "strength": None,
                "rank_gap": None,
                "aggregate": method,
                "confidence": label.confidence,
                "votes": label.votes,
                "query_id": query.pk,
                "prompt_id": query.prompt.external_id,
                "annotators": sorted(annotator_pseudonym(a) for a in label.annotator_ids),
            }


def aggregated_trl(study: Study, method: str, sources: str | Iterable[str] | None) -> Export:
    """The trl export with one row per pairwise query, labelled by an aggregate of its votes."""
    if method not in AGGREGATES:
        raise InvalidInput(f"Unknown aggregate {method!r}; use one of {', '.join(AGGREGATES)}.", field="aggregate")
    if sources not in (None, "") and parse_sources(sources) != ("pairwise",):
        raise InvalidInput("aggregate combines pairwise votes only; use sources=pairwise or leave sources out.", field="sources")
    decided = pair_labels(study, method)
    ties = sum(1 for label in decided.labels if label.label == "tie")
    counts = {"rows": len(decided.labels) - ties, "skipped_ties": ties, "skipped_both_bad": decided.both_bad_votes}
    return Export("trl", aggregated_trl_rows(study, method, decided), counts)


def kto_row(study: Study, annotation: Annotation, completion: str, label: bool, source: str) -> dict:
    return {
        "prompt": annotation.query.prompt.messages,
        "completion": assistant_turn(completion),
        "label": label,
        "source": source,
        **provenance(study, annotation),
    }


def kto_rows(study: Study, sources: tuple[str, ...]) -> Iterator[dict]:
    if "pairwise" in sources:
        votes = labels.pairwise_votes(study).filter(choice__in=["a", "b", "both_bad"])
        for vote in votes.iterator(chunk_size=ITER_CHUNK):
            first, second = labels.vote_responses(vote)
            yield kto_row(study, vote.annotation, first.text, vote.choice == "a", "pairwise")
            yield kto_row(study, vote.annotation, second.text, vote.choice == "b", "pairwise")
    if "ranking" in sources:
        for ranking in labels.rankings(study).filter(cannot_rank_reason="").iterator(chunk_size=ITER_CHUNK):
            if len(ranking.groups) < 2:
                continue
            texts = {r.pk: r.text for r in annotation_responses(ranking.annotation)}
            for response_id in ranking.groups[0]:
                yield kto_row(study, ranking.annotation, texts[response_id], True, "ranking")
            for response_id in ranking.groups[-1]:
                yield kto_row(study, ranking.annotation, texts[response_id], False, "ranking")
    if "revision" in sources:
        for critique in labels.revisions(study).iterator(chunk_size=ITER_CHUNK):
            yield kto_row(study, critique.annotation, critique.revision, True, "revision")
            yield kto_row(study, critique.annotation, critique.response.text, False, "revision")


def preference_counts(study: Study, sources: tuple[str, ...], *, unpaired: bool) -> dict:
    """What trl (or, unpaired, kto) will write and what it leaves out, counted before writing."""
    rows = desirable = 0
    skipped: dict[str, int] = {}
    if "pairwise" in sources:
        votes = dict(
            labels.pairwise_votes(study)
            .prefetch_related(None)
            .order_by()
            .values("choice")
            .annotate(n=Count("id"))
            .values_list("choice", "n")
        )
        sided, both_bad = votes.get("a", 0) + votes.get("b", 0), votes.get("both_bad", 0)
        if unpaired:
            rows, desirable = rows + 2 * (sided + both_bad), desirable + sided
        else:
            rows += sided
            skipped["skipped_both_bad"] = both_bad
        skipped["skipped_ties"] = votes.get("tie", 0)
    if "ranking" in sources:
        cannot = tied = 0
        for groups, reason in labels.rankings(study).prefetch_related(None).values_list("groups", "cannot_rank_reason"):
            if reason:
                cannot += 1
            elif not unpaired:
                rows += ranking_pair_count(groups)
            elif len(groups) < 2:
                tied += 1
            else:
                rows, desirable = rows + len(groups[0]) + len(groups[-1]), desirable + len(groups[0])
        skipped["skipped_cannot_rank"] = cannot
        if unpaired:
            skipped["skipped_all_tied_rankings"] = tied
    if "revision" in sources:
        revisions = labels.revisions(study).count()
        rows, desirable = rows + (2 * revisions if unpaired else revisions), desirable + revisions
        unchanged = labels.critiques(study).exclude(revision="").filter(revision=F("response__text"))
        skipped["skipped_unchanged_revisions"] = unchanged.count()
    counts = {"rows": rows}
    if unpaired:
        counts |= {"desirable": desirable, "undesirable": rows - desirable}
    return counts | skipped


# --- per-kind rows ----------------------------------------------------------------------------


def ranking_rows(study: Study) -> Iterator[dict]:
    for ranking in labels.rankings(study).iterator(chunk_size=ITER_CHUNK):
        annotation = ranking.annotation
        yield {
            "prompt": annotation.query.prompt.messages,
            "responses": [{"id": r.pk, "text": r.text} for r in annotation_responses(annotation)],
            "ranking": ranking.groups if not ranking.cannot_rank_reason else [],
            "cannot_rank_reason": ranking.cannot_rank_reason,
            **provenance(study, annotation),
        }


def asks_for(annotation: Annotation, kind: str) -> bool:
    return kind in (annotation.query.asks or [annotation.query.kind])


def span_rows(study: Study) -> Iterator[dict]:
    span_labels = fgrlhf.span_labels(study)
    for annotation in labels.annotations_with_parts(study).iterator(chunk_size=ITER_CHUNK):
        if not asks_for(annotation, FeedbackKind.SPANS):
            continue
        messages = annotation.query.prompt.messages
        for response in annotation_responses(annotation):
            spans = [s for s in annotation.spans.all() if s.response_id == response.pk]
            yield {
                "prompt": messages,
                "question": fgrlhf.question_of(messages),
                "response": response.text,
                "response_id": response.pk,
                "feedback": fgrlhf.feedback_of(spans, span_labels),
                **provenance(study, annotation),
            }


def span_row_count(study: Study) -> int:
    sizes = dict(
        QueryResponse.objects.filter(study_data_query(study, "query__"))
        .values("query_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("query_id", "n")
    )
    current = Annotation.objects.filter(study_label(study))
    return sum(
        sizes.get(query_id, 0)
        for query_id, kind, asks in current.values_list("query_id", "query__kind", "query__asks")
        if FeedbackKind.SPANS in (asks or [kind])
    )


def critique_rows(study: Study) -> Iterator[dict]:
    for critique in labels.critiques(study).iterator(chunk_size=ITER_CHUNK):
        yield {
            "prompt": critique.annotation.query.prompt.messages,
            "response": critique.response.text,
            "response_id": critique.response_id,
            "critique": critique.critique,
            "revision": critique.revision,
            **provenance(study, critique.annotation),
        }


def rating_rows(study: Study) -> Iterator[dict]:
    parts = labels.ratings(study).iterator(chunk_size=ITER_CHUNK)
    for _, group in itertools.groupby(parts, key=lambda part: (part.annotation_id, part.response_id)):
        group = list(group)
        first = group[0]
        yield {
            "prompt": first.annotation.query.prompt.messages,
            "response": first.response.text,
            "response_id": first.response_id,
            "ratings": {part.aspect: part.value for part in group},
            **provenance(study, first.annotation),
        }


def part_or_none(annotation: Annotation, name: str) -> object | None:
    return getattr(annotation, name, None)  # a missing reverse one-to-one raises an AttributeError subclass


def raw_row(study: Study, annotation: Annotation, flags: dict[int, list[str]]) -> dict:
    vote, ranking = part_or_none(annotation, "pairwise"), part_or_none(annotation, "ranking")
    successor, rejection = part_or_none(annotation, "superseded_by"), annotation.rejected_by
    return {
        "annotation_id": annotation.pk,
        "query_id": annotation.query_id,
        **chosen_by(annotation),
        "kind": annotation.query.kind,
        "asks": annotation.query.asks,
        "prompt_id": annotation.query.prompt.external_id,
        "prompt": annotation.query.prompt.messages,
        "responses": [{"id": r.pk, "text": r.text} for r in annotation_responses(annotation)],
        "annotator": annotator_pseudonym(annotation.annotator_id),
        "display_order": annotation.assignment.display_order if annotation.assignment else None,
        "time_spent_ms": annotation.time_spent_ms,
        "active_ms": annotation.active_ms,
        "created_at": annotation.created_at.isoformat(),
        "supersedes": annotation.supersedes_id,
        "superseded_by": successor.pk if successor else None,
        "rejected": {"review": rejection.pk, "note": rejection.note} if rejection else None,
        "current": successor is None and rejection is None,
        "pairwise": {"choice": vote.choice, "strength": vote.strength, "shown_choice": vote.shown_choice} if vote else None,
        "ranking": {"groups": ranking.groups, "cannot_rank_reason": ranking.cannot_rank_reason} if ranking else None,
        "spans": [
            {
                "response": s.response_id,
                "start": s.start,
                "end": s.end,
                "category": s.category,
                "note": s.note,
                "metadata": s.metadata,
            }
            for s in annotation.spans.all()
        ],
        "critiques": [
            {"response": c.response_id, "critique": c.critique, "revision": c.revision} for c in annotation.critiques.all()
        ],
        "ratings": [{"response": r.response_id, "aspect": r.aspect, "value": r.value} for r in annotation.ratings.all()],
        "flags": flags.get(annotation.pk, []),
    }


def raw_rows(study: Study) -> Iterator[dict]:
    flags = annotation_flags(study)
    for annotation in labels.annotations_with_parts(study, superseded=True).iterator(chunk_size=ITER_CHUNK):
        yield raw_row(study, annotation, flags)


# --- choosing a format ------------------------------------------------------------------------


def parse_sources(sources: str | Iterable[str] | None) -> tuple[str, ...]:
    """`pairwise,ranking` (or a list) to a tuple in canonical order; none given means all."""
    if sources is None or sources == "":
        return PREFERENCE_SOURCES
    return names_from(sources, PREFERENCE_SOURCES, what="preference source", field="sources")


def names_from(value: str | Iterable[str], known: tuple[str, ...], *, what: str, field: str, also: str = "") -> tuple[str, ...]:
    """A comma-separated string (or a list) of names from `known`, in `known`'s order; an unknown one is refused."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise InvalidInput(f"Unknown {what} {(unknown or [value])[0]!r}; use {also}any of {', '.join(known)}.", field=field)
    return tuple(name for name in known if name in names)


def parse_flags(exclude_flagged: str | Iterable[str] | None) -> tuple[str, ...]:
    """`1` (every flag), `too_fast,cycle` or a list of flag names; none given, "" or `0` means no filter."""
    if exclude_flagged in (None, "", "0"):
        return ()
    if exclude_flagged == "1" or exclude_flagged is True:
        return FLAGS
    return names_from(exclude_flagged, FLAGS, what="bias flag", field="exclude_flagged", also="1 (any flag) or ")


def export_build(
    *,
    study: Study,
    format: str,
    sources: str | Iterable[str] | None = None,
    aggregate: str | None = None,
    exclude_flagged: str | Iterable[str] | None = None,
) -> Export:
    """Prepare an export in one of EXPORT_FORMATS; `sources` narrows trl and kto (default: all sources);
    `aggregate` (trl only) gives one row per pairwise query from all its votes; `exclude_flagged`
    leaves out the rows of answers with bias flags (see the module's docstring)."""
    names = parse_flags(exclude_flagged)
    if names:
        if format == "fgrlhf" or aggregate not in (None, ""):
            raise InvalidInput(
                "exclude_flagged applies to rows from one answer each, not to fgrlhf records or aggregated rows.",
                field="exclude_flagged",
            )
        flagged = flagged_annotations(study, names)
        export = export_build(study=study, format=format, sources=sources)
        # Counted before writing, as every export's rows are: one more pass over the same rows.
        left_out = sum(
            1 for row in export_build(study=study, format=format, sources=sources).rows if row["annotation_id"] in flagged
        )
        counts = export.counts | {"rows": export.counts["rows"] - left_out, "flagged_excluded": left_out}
        return Export(format, (row for row in export.rows if row["annotation_id"] not in flagged), counts)
    if format not in EXPORT_FORMATS:
        raise InvalidInput(f"Unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}.", field="format")
    if aggregate not in (None, ""):
        if format != "trl":
            raise InvalidInput(f"aggregate applies to the trl format, not {format}.", field="aggregate")
        return aggregated_trl(study, aggregate, sources)
    if sources not in (None, "") and format not in ("trl", "kto"):
        raise InvalidInput(f"sources applies to the trl and kto formats, not {format}.", field="sources")
    if format == "trl":
        chosen = parse_sources(sources)
        return Export(format, trl_rows(study, chosen), preference_counts(study, chosen, unpaired=False))
    if format == "kto":
        chosen = parse_sources(sources)
        return Export(format, kto_rows(study, chosen), preference_counts(study, chosen, unpaired=True))
    if format == "rankings":
        rankings = labels.rankings(study)
        counts = {"rows": rankings.count(), "cannot_rank": rankings.exclude(cannot_rank_reason="").count()}
        return Export(format, ranking_rows(study), counts)
    if format == "spans":
        return Export(format, span_rows(study), {"rows": span_row_count(study)})
    if format == "critiques":
        critiques = labels.critiques(study)
        counts = {"rows": critiques.count(), "with_revision": critiques.exclude(revision="").count()}
        return Export(format, critique_rows(study), counts)
    if format == "ratings":
        rated = labels.ratings(study).order_by().values("annotation_id", "response_id").distinct().count()
        return Export(format, rating_rows(study), {"rows": rated})
    if format == "fgrlhf":
        return Export(format, fgrlhf.fgrlhf_records(study), {"rows": fgrlhf.fgrlhf_count(study)})
    everything = Annotation.objects.filter(study_data_query(study, "query__"))
    superseded = everything.exclude(current_annotation()).count()
    return Export(format, raw_rows(study), {"rows": everything.count(), "superseded": superseded})
