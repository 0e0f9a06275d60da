"""Preference losses for reward models (ALGORITHMS.md §1).

Inputs are 1-D tensors of rewards, one entry per comparison; losses are means over the batch.
Bradley–Terry with an optional margin is here now; Davidson ties, Plackett–Luce and ensemble
aggregation belong beside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
