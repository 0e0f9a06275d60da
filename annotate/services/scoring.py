"""Scoring responses with a registered reward model, for selection, dashboards and the API."""

from __future__ import annotations

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Response, Study

MAX_ITEMS = 2000


def model_version_score(*, version: ModelVersion, items: list[tuple[list[dict], str]], batch_size: int = 32) -> list[float]:
    """Rewards for (chat prompt, response) items, in order; the artifact's checksum is verified first."""
    from learning.artifacts import ArtifactIntegrityError
    from learning.reward.score import score_responses

    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"At most {MAX_ITEMS} items per call, got {len(items)}.", field="items")
    try:
        return score_responses(version.artifact_path, items, batch_size, expected_checksum=version.checksum)
    except ArtifactIntegrityError as exc:
        raise Conflict(f"Model version {version.pk} cannot be used: {exc}") from None


def study_responses_score(*, version: ModelVersion, study: Study, response_ids: list[int]) -> dict[int, float]:
    """Rewards for stored responses of the version's study, by response id."""
    responses = {r.pk: r for r in Response.objects.select_related("prompt").filter(pk__in=response_ids, prompt__study=study)}
    missing = [rid for rid in response_ids if rid not in responses]
    if missing:
        raise InvalidInput(f"No response {missing[0]} in this study.", field="response_ids")
    ordered = [responses[rid] for rid in response_ids]
    scores = model_version_score(version=version, items=[(r.prompt.messages, r.text) for r in ordered])
    return dict(zip(response_ids, scores, strict=True))
