"""The selection job's runner: the pool's ids and arrays in, picks as ids and scores out, as the round writes them."""

import numpy as np
import pytest

from learning.jobs import job_config
from learning.select.job import selection_job


def config(strategy: str, size: int, **params):
    return job_config("selection", {"strategy": strategy, "params": params, "size": size, "seed": 1})


def test_uncertainty_picks_the_candidates_with_the_smallest_margins_by_their_ids():
    margins = np.array([2.0, -0.1, 1.5, 0.05, -3.0])
    result = selection_job(config=config("uncertainty", 2), candidates=[10, 11, 12, 13, 14], margins=margins)
    assert result["picked"] == [13, 11] and result["chosen_by"] == "uncertainty" and result["pool"] == 5
    assert result["scores"] == pytest.approx([-0.05, -0.1])


def test_an_ensemble_picks_the_largest_variance_of_its_members_margins():
    margins = np.array([[1.0, 0.0, 2.0], [1.0, 3.0, 2.1]])  # candidate 21 varies most
    result = selection_job(config=config("uncertainty", 1), candidates=[20, 21, 22], margins=margins)
    assert result["picked"] == [21]


def test_a_strategy_that_needs_a_model_picks_at_random_before_one_exists_and_says_so():
    result = selection_job(config=config("uncertainty", 3), candidates=list(range(100, 110)))
    assert result["chosen_by"] == "random" and len(set(result["picked"])) == 3
    assert set(result["picked"]) <= set(range(100, 110))


def test_d_optimal_on_pairs_and_on_rankings_reads_each_candidates_pair_differences():
    rng = np.random.default_rng(0)
    pairs = [rng.normal(size=(1, 4)) for _ in range(6)]
    picked = selection_job(config=config("d_optimal", 3, projection_dims=None), candidates=list(range(6)), groups=pairs)
    assert picked["chosen_by"] == "d_optimal" and len(picked["picked"]) == 3
    assert picked["scores"] == sorted(picked["scores"], reverse=True) and picked["scores"][0] > 0
    rankings = [rng.normal(size=(3, 4)) for _ in range(5)]  # K = 3: three pairs each
    kwise = selection_job(config=config("d_optimal", 2), candidates=[5, 6, 7, 8, 9], groups=rankings)
    assert kwise["chosen_by"] == "d_optimal" and set(kwise["picked"]) <= {5, 6, 7, 8, 9} and len(kwise["picked"]) == 2


def test_an_empty_pool_picks_nothing_and_a_cancelled_job_stops():
    from learning.errors import TrainingStopped

    assert selection_job(config=config("d_optimal", 5), candidates=[])["picked"] == []
    with pytest.raises(TrainingStopped):
        selection_job(config=config("random", 5), candidates=[1, 2], should_stop=lambda: True)


def test_progress_is_reported_from_start_to_end():
    seen = []
    selection_job(config=config("random", 2), candidates=[1, 2, 3], progress=seen.append)
    assert seen == [{"step": 0, "total_steps": 1}, {"step": 1, "total_steps": 1}]
