"""One entry point for every strategy, so the selection job and the simulator choose the same way."""

from __future__ import annotations

import numpy as np

from learning.select import DOptimalParams, OfflineDesignParams, RandomParams, UncertaintyParams
from learning.select.common import Selection, random_projection, sigmoid_weights
from learning.select.d_optimal import Design, frank_wolfe_design, greedy_d_optimal
from learning.select.random import select_random
from learning.select.uncertainty import select_uncertain


def choose_queries(
    params,
    k: int,
    *,
    n: int,
    features: np.ndarray | None = None,
    margins: np.ndarray | None = None,
    labelled_features: np.ndarray | None = None,
    labelled_margins: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[Selection, str]:
    """Pick k of the n pool queries under `params` (one of `learning.select.STRATEGIES`' classes).

    features: (n, d) query features (pair differences); needed by the D-optimal strategies.
    margins: the current reward model's Δ per pool query, (n,), or (members, n) for an ensemble;
        None before any model exists.
    labelled_features / labelled_margins: what is already labelled, for the D-optimal design.
    Returns the picks and how they were chosen ("random" where a strategy needs a model that
    does not exist yet), which the caller records with the round.
    """
    k = min(int(k), int(n))
    if isinstance(params, RandomParams):
        return select_random(n, k, seed=seed + params.seed), "random"
    if isinstance(params, UncertaintyParams):
        if margins is None:
            return select_random(n, k, seed=seed + params.seed), "random"
        return select_uncertain(margins, k), "uncertainty"
    if not isinstance(params, DOptimalParams | OfflineDesignParams):
        raise TypeError(f"not a strategy's parameters: {params!r}")
    if features is None or len(features) != n:
        raise ValueError("the D-optimal strategies need one feature row per pool query")
    z, projection = features, None
    if params.projection_dims is not None:
        z, projection = random_projection(features, params.projection_dims, seed=params.seed)
    if isinstance(params, OfflineDesignParams):
        return frank_wolfe_design(
            z, k, epsilon=params.epsilon, max_iterations=params.max_iterations
        ).selection, "d_optimal_offline"
    mean_margins = None if margins is None else np.asarray(margins).reshape(-1, n).mean(axis=0)
    weights = None if mean_margins is None else sigmoid_weights(mean_margins)
    design = None
    if labelled_features is not None and len(labelled_features):
        known = labelled_features if projection is None else labelled_features @ projection
        known_weights = None if labelled_margins is None else sigmoid_weights(labelled_margins)
        design = Design.prior(z.shape[1], lam=params.lam, labelled=known, labelled_weights=known_weights)
    selection = greedy_d_optimal(
        z, k, weights=weights, design=design, lam=params.lam, shortlist=params.shortlist, block=params.block
    )
    return selection, "d_optimal"
