"""Preference losses for reward models (ALGORITHMS.md §1), and ensemble aggregation.

Inputs are tensors of rewards, one entry per response; losses are means over comparisons
(pairs or rankings), i.e. mean negative log-likelihoods. Everything is computed in log space
(``logsigmoid`` / ``logsumexp``), so huge reward gaps stay finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from learning.data import ranking_to_pairs

__all__ = [
    "aggregate_rewards",
    "bradley_terry_loss",
    "davidson_log_probabilities",
    "davidson_tie_loss",
    "groups_to_levels",
    "plackett_luce_loss",
    "ranking_to_pairs",
]

Aggregate = Literal["mean", "wco", "uwo"]


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of −log σ(r_w − r_l − m): Bradley–Terry, with Llama 2's strength margin m ≥ 0.

    A margin asks the model to separate strongly preferred pairs by more; m = 0 (or None) is
    plain BT. ``logsigmoid`` keeps large negative differences finite.
    """
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"reward shapes differ: {tuple(r_chosen.shape)} vs {tuple(r_rejected.shape)}")
    difference = r_chosen - r_rejected
    if margin is not None:
        difference = difference - margin.to(difference.dtype)
    return -F.logsigmoid(difference).mean()


def davidson_log_probabilities(difference: torch.Tensor, log_nu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log P(1≻2), log P(tie)) under Davidson's model, for Δ = r₁ − r₂ and ν = exp(log_nu).

    Multiplying P(1≻2) = 1/(1 + e^{−Δ} + ν e^{−Δ/2}) through by e^{Δ/2} shows that all three
    outcomes share the denominator Z = e^{Δ/2} + e^{−Δ/2} + ν, with numerators e^{Δ/2} (1 wins),
    e^{−Δ/2} (2 wins) and ν (tie); log Z is one ``logsumexp``.
    """
    half = difference / 2
    log_z = torch.logsumexp(torch.stack([half, -half, log_nu.expand_as(half)]), dim=0)
    return half - log_z, log_nu - log_z


def davidson_tie_loss(
    r_first: torch.Tensor,
    r_second: torch.Tensor,
    tie: torch.Tensor,
    log_nu: torch.Tensor,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean Davidson negative log-likelihood; where ``tie`` is False, ``r_first`` is the winner.

    ``log_nu`` is a scalar (learned) parameter; ν = exp(log_nu) ≥ 0 sets how likely ties are
    at equal rewards (P(tie | Δ = 0) = ν / (2 + ν)). As ν → 0 a win's term tends to BT's
    −log σ(Δ). An optional margin is subtracted from Δ for wins only, as in BT; ties have no
    direction to shift.
    """
    if r_first.shape != r_second.shape or r_first.shape != tie.shape:
        raise ValueError(f"shapes differ: {tuple(r_first.shape)}, {tuple(r_second.shape)}, {tuple(tie.shape)}")
    tie = tie.to(torch.bool)
    difference = r_first - r_second
    if margin is not None:
        difference = difference - torch.where(tie, torch.zeros_like(margin), margin).to(difference.dtype)
    log_win, log_tie = davidson_log_probabilities(difference, log_nu.to(difference.dtype))
    return -torch.where(tie, log_tie, log_win).mean()


def groups_to_levels(groups: Sequence[Sequence[int]], n_items: int) -> list[int]:
    """Level of each item in a ranking: 0 for the best group, 1 for the next…; −1 if unranked."""
    levels = [-1] * n_items
    for level, members in enumerate(group for group in groups if group):
        for index in members:
            levels[index] = level
    return levels


def plackett_luce_loss(rewards: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean over rankings of −log P(ranking) under Plackett–Luce (Zhu, Jordan & Jiao 2023).

    ``rewards`` and ``levels`` have shape (rankings, K); ``levels[b, k]`` is item k's group
    (0 = best, see ``groups_to_levels``), −1 for padding or unranked items, which are ignored.

    Without ties this is P(σ) = Π_j exp(r_σ(j)) / Σ_{k ≥ j} exp(r_σ(k)). Ties (items sharing a
    level) form an unordered group, treated as in Breslow's approximation for tied events: each
    member of a group competes against everything not yet placed, its own group included. The
    term of item i is r_i − logsumexp{r_j : level_j ≥ level_i}. For K = 2 without a tie this
    is exactly Bradley–Terry (the last item's term is r − r = 0). Within a tied group the
    gradient pulls members' rewards together; nothing orders them.
    """
    if rewards.shape != levels.shape or rewards.dim() != 2:
        raise ValueError(
            f"rewards and levels must share a (rankings, K) shape, got {tuple(rewards.shape)} and {tuple(levels.shape)}"
        )
    valid = levels >= 0
    # competes[b, i, j]: item j is still unplaced when item i is drawn.
    competes = (levels.unsqueeze(2) <= levels.unsqueeze(1)) & valid.unsqueeze(1) & valid.unsqueeze(2)
    # Each item also competes with itself, so a padding row's logsumexp is finite (and its
    # gradient not NaN) even though its term is then discarded.
    competes = competes | torch.eye(levels.shape[1], dtype=torch.bool, device=levels.device)
    expanded = rewards.unsqueeze(1).expand(-1, rewards.shape[1], -1)
    masked = expanded.masked_fill(~competes, float("-inf"))
    log_denominator = torch.logsumexp(masked, dim=2)
    terms = torch.where(valid, rewards - log_denominator, torch.zeros_like(rewards))
    return -terms.sum(dim=1).mean()


def aggregate_rewards(member_rewards: torch.Tensor, how: Aggregate = "mean", uwo_lambda: float = 1.0) -> torch.Tensor:
    """Combine an ensemble's rewards, shape (members, items), into one per item (Coste et al. 2024).

    ``mean``: the average; ``wco`` (worst-case): the minimum over members; ``uwo``
    (uncertainty-weighted): mean − λ·variance, with the population variance over members (0 for a
    single member), so UWO ≤ mean always.
    """
    if member_rewards.dim() != 2:
        raise ValueError(f"member rewards must have shape (members, items), got {tuple(member_rewards.shape)}")
    if how == "mean":
        return member_rewards.mean(dim=0)
    if how == "wco":
        return member_rewards.min(dim=0).values
    if how == "uwo":
        return member_rewards.mean(dim=0) - uwo_lambda * member_rewards.var(dim=0, unbiased=False)
    raise ValueError(f"aggregate must be 'mean', 'wco' or 'uwo', got {how!r}")
