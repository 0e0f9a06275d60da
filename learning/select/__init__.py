"""Active query selection: which queries to ask next. Arrays in, indices and scores out.

`STRATEGIES` maps each strategy a study can use to its parameters, a dataclass that checks
itself; the web process checks a study's `selection_params` with it, and the selection job runs
with the same object.
"""

from __future__ import annotations

from dataclasses import dataclass

from learning.config import ConfigError, config_from_dict, require

MAX_PROJECTION_DIMS = 256


def check_projection(dims: int | None) -> None:
    require(dims is None or 1 <= dims <= MAX_PROJECTION_DIMS, "projection_dims", f"null or 1 to {MAX_PROJECTION_DIMS}", dims)


@dataclass(frozen=True)
class RandomParams:
    """Uniformly random queries: the baseline every other strategy is measured against."""

    seed: int = 0


@dataclass(frozen=True)
class UncertaintyParams:
    """The largest variance of an ensemble's reward differences, or the smallest |Δ| of one model.

    Needs a reward model: before one exists, a round is picked at random.
    """

    seed: int = 0  # for the random first round


@dataclass(frozen=True)
class DOptimalParams:
    """Greedy log-det over query features (ALGORITHMS.md §3.1).

    lam: the prior λ of V = λI + Σ w z zᵀ; a larger λ favours long feature vectors less.
    projection_dims: features are randomly projected to this many dims (null keeps them whole).
    shortlist, block: how the exact greedy reads the pool (speed only; the picks do not change).
    """

    lam: float = 1.0
    projection_dims: int | None = 128
    shortlist: int = 1024
    block: int = 512
    seed: int = 0  # the projection's and the random first round's

    def __post_init__(self) -> None:
        require(self.lam > 0, "lam", "a number above 0", self.lam)
        check_projection(self.projection_dims)
        require(self.shortlist >= 1, "shortlist", "a whole number of at least 1", self.shortlist)
        require(self.block >= 1, "block", "a whole number of at least 1", self.block)


@dataclass(frozen=True)
class OfflineDesignParams:
    """The Frank-Wolfe design of Scheid et al. for a fixed budget, rounded to a round's queries.

    epsilon: stop when every query's variance is at most d (1 + epsilon) (Kiefer-Wolfowitz).
    """

    epsilon: float = 0.05
    max_iterations: int = 10_000
    projection_dims: int | None = 64
    seed: int = 0

    def __post_init__(self) -> None:
        require(0 < self.epsilon <= 10, "epsilon", "a number above 0 and at most 10", self.epsilon)
        require(self.max_iterations >= 1, "max_iterations", "a whole number of at least 1", self.max_iterations)
        check_projection(self.projection_dims)


STRATEGIES: dict[str, type] = {
    "random": RandomParams,
    "uncertainty": UncertaintyParams,
    "d_optimal": DOptimalParams,
    "d_optimal_offline": OfflineDesignParams,
}
# Strategies that need a trained reward model (scores or features from it); without one the
# first round is random.
NEEDS_MODEL = frozenset({"uncertainty"})
# Strategies that read query features: a round under one computes them first (a features job).
READS_FEATURES = frozenset({"d_optimal", "d_optimal_offline"})
# Strategies that read the current reward model's margins, once a version exists (uncertainty's
# scores, D-optimal's σ′ weights): a round under one caches its rewards first (the features job).
READS_MARGINS = frozenset({"uncertainty", "d_optimal"})


def strategy_params(strategy: str, params: dict | None, *, prefix: str = "selection_params"):
    """The checked parameters of `strategy`; an unknown strategy, key or value is a ConfigError naming it."""
    if strategy not in STRATEGIES:
        known = ", ".join(STRATEGIES)
        raise ConfigError(f"Unknown selection strategy {strategy!r}; use one of {known}.", field="selection_strategy")
    return config_from_dict(STRATEGIES[strategy], params, prefix=prefix)
