"""What every selection strategy takes and returns: plain arrays, no Django, no torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """The chosen pool rows in the order they were picked, each with the score it was picked on."""

    indices: np.ndarray  # int64, (k,)
    scores: np.ndarray  # float, (k,)

    def __len__(self) -> int:
        return len(self.indices)


def check_features(features: np.ndarray) -> np.ndarray:
    """A finite (N, d) float array; float32 and float64 are kept as they are, anything else becomes float32."""
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"features must be a 2-d array (queries × dims), not {array.ndim}-d")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("features contain NaN or infinite values")
    return np.ascontiguousarray(array)


def check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Per-query weights (σ' of the current model's margin), ones where there is no model yet."""
    if weights is None:
        return np.ones(n)
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"weights must have one value per query ({n}), not shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError("weights must be finite and not negative")
    return array


def sigmoid_weights(margins: np.ndarray) -> np.ndarray:
    """σ'(Δ) = σ(Δ)(1 - σ(Δ)) for each query's current reward margin Δ: the GLM's Fisher weight."""
    s = 1.0 / (1.0 + np.exp(-np.asarray(margins, dtype=np.float64)))
    return s * (1.0 - s)


def top_k(scores: np.ndarray, k: int) -> Selection:
    """The k highest scores, best first, lower index first among equal scores."""
    scores = np.asarray(scores, dtype=np.float64)
    k = min(int(k), len(scores))
    if k <= 0:
        return Selection(indices=np.zeros(0, dtype=np.int64), scores=np.zeros(0))
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return Selection(indices=order.astype(np.int64), scores=scores[order])


def random_projection(features: np.ndarray, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Project to `dims` with a seeded Gaussian matrix scaled by 1/√dims (Johnson-Lindenstrauss).

    Returns the projected features and the matrix, which is stored with them so later features
    are projected the same way. Fewer dims than asked are never added: dims ≥ d returns a copy.
    """
    array = check_features(features)
    d = array.shape[1]
    if dims < 1:
        raise ValueError(f"projection dims must be at least 1, not {dims}")
    if dims >= d:
        return array.copy(), np.eye(d, dtype=array.dtype)
    matrix = np.random.default_rng(seed).standard_normal((d, dims)).astype(array.dtype) / np.sqrt(dims)
    return array @ matrix, matrix
