"""Score (prompt, response) items with a saved reward model."""

from __future__ import annotations

import os
from collections.abc import Sequence

from learning.reward.model import compute_rewards, load_reward_model, pick_device, tokenize


def score_responses(
    artifact_dir: str | os.PathLike,
    prompts_and_responses: list[tuple[list[dict], str]],
    batch_size: int = 32,
    *,
    expected_checksum: str | None = None,
) -> list[float]:
    """Rewards for each (chat prompt, response), in input order.

    The artifact is verified against its checksums before use (and against
    ``expected_checksum`` when given). Scores are only comparable within one model version.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    tokenizer, model, artifact = load_reward_model(artifact_dir, expected_checksum=expected_checksum)
    if not prompts_and_responses:
        return []
    device = pick_device()
    model.to(device)
    items: Sequence[tuple[list[dict], str]] = prompts_and_responses
    rows = tokenize(tokenizer, items, int(artifact.metadata["max_length"]))
    return compute_rewards(model, tokenizer, rows, batch_size=batch_size, device=device)
