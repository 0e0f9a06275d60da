"""Uncertainty selection: ask where the reward models disagree, or where one model is least sure."""

from __future__ import annotations

import numpy as np

from learning.select.common import Selection, top_k


def ensemble_variance(member_margins: np.ndarray) -> np.ndarray:
    """Var over members of each query's reward difference Δ; `member_margins` is (members, queries)."""
    margins = np.asarray(member_margins, dtype=np.float64)
    if margins.ndim != 2 or margins.shape[0] < 2:
        raise ValueError("member_margins must be (members ≥ 2, queries): one reward difference per member and query")
    return margins.var(axis=0)


def select_uncertain(margins: np.ndarray, k: int) -> Selection:
    """The k most uncertain queries.

    With an ensemble, `margins` is (members, queries) and the score is the variance of Δ across
    members (ALGORITHMS.md §3.3). With one model it is (queries,) and the score is -|Δ|: the
    smallest margin is the least sure.
    """
    margins = np.asarray(margins, dtype=np.float64)
    if not np.isfinite(margins).all():
        raise ValueError("margins contain NaN or infinite values")
    if margins.ndim == 1:
        return top_k(-np.abs(margins), k)
    return top_k(ensemble_variance(margins), k)
