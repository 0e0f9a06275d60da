"""Scoring responses with a registered reward model, for selection, dashboards and the API."""

from __future__ import annotations

from dataclasses import dataclass

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Response, Study
from annotate.models.training import RunKind

MAX_ITEMS = 2000
AGGREGATES = ("mean", "wco", "uwo")  # how an ensemble's members combine (ALGORITHMS.md §1)


@dataclass
class Scores:
    """One scalar per item, comparable within a version, and what it was made of where that helps.

    Reward models: the reward (an ensemble's aggregate). Rating models: the mean predicted rating,
    with per-aspect ratings as details. Span models: the sum of the dense segment rewards, with
    the segments (start, end, reward, flagged categories) as details.
    """

    values: list[float]
    details: list | None = None


def model_version_score(
    *, version: ModelVersion, items: list[tuple[list[dict], str]], batch_size: int = 32, aggregate: str = "mean"
) -> Scores:
    """Score (chat prompt, response) items in order; the artifact's checksum is verified first."""
    from learning.artifacts import ArtifactIntegrityError

    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"At most {MAX_ITEMS} items per call, got {len(items)}.", field="items")
    if aggregate not in AGGREGATES:
        raise InvalidInput(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}.", field="aggregate")
    try:
        if version.kind == RunKind.RATING_REWARD:
            from learning.reward.ratings import score_ratings

            ratings = score_ratings(version.artifact_path, items, batch_size, expected_checksum=version.checksum)
            return Scores([sum(r.values()) / len(r) for r in ratings], ratings)
        if version.kind == RunKind.SPAN_REWARD:
            from learning.reward.spans import dense_rewards, predict_segments_batch

            predicted = predict_segments_batch(version.artifact_path, items, expected_checksum=version.checksum)
            details = [
                [
                    {"start": p.start, "end": p.end, "reward": reward, "flagged": sorted(c for c, on in p.labels.items() if on)}
                    for p, (_, reward) in zip(segments, dense_rewards(segments), strict=True)
                ]
                for segments in predicted
            ]
            return Scores([sum(d["reward"] for d in segments) for segments in details], details)
        from learning.reward.score import score_responses

        values = score_responses(
            version.artifact_path, items, batch_size, expected_checksum=version.checksum, aggregate=aggregate
        )
        return Scores(values)
    except ArtifactIntegrityError as exc:
        raise Conflict(f"Model version {version.pk} cannot be used: {exc}") from None


def study_responses_score(*, version: ModelVersion, study: Study, response_ids: list[int], aggregate: str = "mean") -> Scores:
    """Scores for stored responses of the version's study, in the order of response_ids."""
    responses = {r.pk: r for r in Response.objects.select_related("prompt").filter(pk__in=response_ids, prompt__study=study)}
    missing = [rid for rid in response_ids if rid not in responses]
    if missing:
        raise InvalidInput(f"No response {missing[0]} in this study.", field="response_ids")
    ordered = [responses[rid] for rid in response_ids]
    return model_version_score(version=version, items=[(r.prompt.messages, r.text) for r in ordered], aggregate=aggregate)
