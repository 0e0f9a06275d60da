"""Score (prompt, response) items with a saved reward model or ensemble."""

from __future__ import annotations

import os
from typing import Any, Literal, overload

import torch

from learning.artifacts import Artifact
from learning.reward.losses import aggregate_rewards
from learning.reward.model import RewardModel, compute_rewards, load_reward_members, pick_device, tokenize

PromptResponse = tuple[list[dict], str]


def member_rewards(
    tokenizer: Any,
    members: list[RewardModel],
    artifact: Artifact,
    prompts_and_responses: list[PromptResponse],
    batch_size: int = 32,
) -> torch.Tensor:
    """(members, items) float64 rewards of loaded members: a caller scoring in chunks loads the model once."""
    device = pick_device()
    max_length = int(artifact.metadata["max_length"])
    rows = tokenize(tokenizer, prompts_and_responses, max_length)
    per_member = []
    for member in members:
        member.to(device)
        per_member.append(compute_rewards(member, tokenizer, rows, batch_size=batch_size, device=device, max_length=max_length))
    return torch.tensor(per_member, dtype=torch.float64).reshape(len(members), len(rows))


@overload
def score_responses(
    artifact_dir: str | os.PathLike,
    prompts_and_responses: list[PromptResponse],
    batch_size: int = ...,
    *,
    expected_checksum: str | None = ...,
    aggregate: Literal["mean", "wco", "uwo"] = ...,
    return_members: Literal[False] = ...,
    uwo_lambda: float = ...,
) -> list[float]: ...


@overload
def score_responses(
    artifact_dir: str | os.PathLike,
    prompts_and_responses: list[PromptResponse],
    batch_size: int = ...,
    *,
    expected_checksum: str | None = ...,
    aggregate: Literal["mean", "wco", "uwo"] = ...,
    return_members: Literal[True],
    uwo_lambda: float = ...,
) -> tuple[list[float], list[list[float]]]: ...


def score_responses(
    artifact_dir: str | os.PathLike,
    prompts_and_responses: list[PromptResponse],
    batch_size: int = 32,
    *,
    expected_checksum: str | None = None,
    aggregate: Literal["mean", "wco", "uwo"] = "mean",
    return_members: bool = False,
    uwo_lambda: float = 1.0,
) -> list[float] | tuple[list[float], list[list[float]]]:
    """Rewards for each (chat prompt, response), in input order.

    For an ensemble, members' rewards are combined by ``aggregate``: ``mean``, ``wco`` (the
    worst member) or ``uwo`` (mean − ``uwo_lambda``·variance); a single model is its own mean.
    With ``return_members=True`` the result is ``(scores, member_scores)`` where
    ``member_scores[i]`` lists item i's reward from each member (the spread is the uncertainty
    signal for active selection).

    The artifact is verified against its checksums before use (and against
    ``expected_checksum`` when given). Scores are only comparable within one model version.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if aggregate not in ("mean", "wco", "uwo"):
        raise ValueError(f"aggregate must be 'mean', 'wco' or 'uwo', got {aggregate!r}")
    tokenizer, members, artifact = load_reward_members(artifact_dir, expected_checksum=expected_checksum)
    if not prompts_and_responses:
        return ([], []) if return_members else []
    matrix = member_rewards(tokenizer, members, artifact, prompts_and_responses, batch_size)
    scores = aggregate_rewards(matrix, aggregate, uwo_lambda).tolist()
    if return_members:
        return scores, matrix.T.tolist()
    return scores
