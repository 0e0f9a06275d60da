"""The selection job: one round's queries chosen from the pool, as a job kind (learning/jobs.py).

`SelectionConfig` is torch-free and numpy-free, so the web process checks a round's settings with
it; `selection_job` takes plain arrays (the caller reads the pool, the features and the margins)
and returns the picks as the run's metrics, which the caller writes to the round.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from learning.config import check_whole_numbers, require, whole_number
from learning.select import STRATEGIES, strategy_params

MAX_ROUND_SIZE = 2_147_483_647  # the round_size column's range


@dataclass(frozen=True)
class SelectionConfig:
    """One round's selection: the study's strategy and selection_params then, its size, and a seed.

    seed: added to the strategy's own seed; the round's number, so each round draws afresh.
    """

    strategy: str = "random"
    params: dict = field(default_factory=dict)
    size: int = whole_number(100, 1, MAX_ROUND_SIZE)
    seed: int = whole_number(0, 0, MAX_ROUND_SIZE)

    def __post_init__(self) -> None:
        check_whole_numbers(self)
        require(self.strategy in STRATEGIES, "strategy", f"one of {', '.join(STRATEGIES)}", self.strategy)
        self.strategy_params()  # a wrong key or value is refused as "params.<key>"

    def strategy_params(self) -> Any:
        """The strategy's checked parameters (one of `learning.select.STRATEGIES`' classes)."""
        return strategy_params(self.strategy, self.params, prefix="params")


def selection_job(
    *,
    config: SelectionConfig,
    candidates: Sequence[int],
    groups: Sequence[Any] | None = None,
    labelled_groups: Sequence[Any] | None = None,
    margins: Any = None,
    labelled_margins: Any = None,
    left_out: int = 0,
    output_dir: str | os.PathLike | None = None,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    eval_groups: Any = None,
) -> dict:
    """The `selection` job: pick `config.size` of the candidates; returns the run's metrics.

    candidates: the pool's query ids. groups: each candidate's (P, d) pair-difference features
    (P = 1 for a pair, K(K−1)/2 for a ranking of K), where the strategy reads features.
    labelled_groups / labelled_margins: the queries already labelled, where the D-optimal design
    starts from them. margins: the current reward model's Δ per candidate, (n,) or (members, n)
    for an ensemble; None before any model exists. left_out: pool queries the caller could not
    offer (their features or rewards are not cached yet), reported back in the metrics.
    Returns {"picked": ids best first, "scores": their scores, "chosen_by": the strategy or
    "random" (a strategy that needs a model before one exists), "pool": how many candidates,
    "left_out"}.
    `output_dir` and `eval_groups` are every job's; selection writes no files and evaluates nothing.
    """
    import numpy as np

    from learning.errors import TrainingStopped
    from learning.select.choose import choose_queries
    from learning.select.d_optimal import Design, greedy_d_optimal_kwise

    if progress is not None:
        progress({"step": 0, "total_steps": 1})
    if should_stop is not None and should_stop():
        raise TrainingStopped("selection was cancelled")
    params, n = config.strategy_params(), len(candidates)
    if n == 0:  # an exhausted pool: nothing to choose, which the caller reports
        return {"picked": [], "scores": [], "chosen_by": config.strategy, "pool": 0, "left_out": left_out}
    inputs: dict = {"margins": margins, "labelled_margins": labelled_margins}
    known = list(labelled_groups or [])
    if groups is not None and any(len(g) > 1 for g in [*groups, *known]):
        # Rankings: a query adds all its pairs to the design (ALGORITHMS.md §3.1).
        lam = getattr(params, "lam", 1.0)
        design = Design.prior(groups[0].shape[1], lam=lam, labelled=np.vstack(known)) if known else None
        selection, chosen_by = greedy_d_optimal_kwise(groups, min(config.size, n), design=design, lam=lam), config.strategy
    else:
        if groups is not None:
            inputs["features"] = np.stack([g[0] for g in groups])
            if known:
                inputs["labelled_features"] = np.stack([g[0] for g in known])
        selection, chosen_by = choose_queries(params, config.size, n=n, seed=config.seed, **inputs)
    if progress is not None:
        progress({"step": 1, "total_steps": 1})
    return {
        "picked": [int(candidates[i]) for i in selection.indices.tolist()],
        "scores": [float(s) for s in selection.scores.tolist()],
        "chosen_by": chosen_by,
        "pool": n,
        "left_out": left_out,
    }
