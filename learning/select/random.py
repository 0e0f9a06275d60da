"""The baseline: a uniformly random batch of the pool, reproducible from its seed."""

from __future__ import annotations

import numpy as np

from learning.select.common import Selection


def select_random(n: int, k: int, *, seed: int) -> Selection:
    """k distinct rows of a pool of n, in a random order; each scores 0 (no row is preferred)."""
    k = min(int(k), int(n))
    picks = np.random.default_rng(seed).permutation(int(n))[:k].astype(np.int64)
    return Selection(indices=picks, scores=np.zeros(k))
