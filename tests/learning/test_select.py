"""Selection strategies: D-optimal greedy against brute force and its slower twins, uncertainty, the offline design."""

import itertools

import numpy as np
import pytest

from learning.config import ConfigError
from learning.select import DOptimalParams, strategy_params
from learning.select.common import random_projection, sigmoid_weights
from learning.select.d_optimal import (
    Design,
    eager_greedy_d_optimal,
    frank_wolfe_design,
    greedy_d_optimal,
    greedy_d_optimal_kwise,
    initial_scores,
    lazy_greedy_d_optimal,
    log_det_gain,
    rank_one_step,
)
from learning.select.random import select_random
from learning.select.uncertainty import select_uncertain


def low_rank_pool(n: int, d: int, rank: int, seed: int, dtype=np.float64) -> np.ndarray:
    """Features like real embeddings: a low-rank signal plus a little noise."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) / np.sqrt(rank)
    return (signal + 0.05 * rng.standard_normal((n, d))).astype(dtype)


def test_greedy_pick_by_pick_equals_brute_force_log_det_on_small_problems():
    for seed in range(5):
        z = np.random.default_rng(seed).standard_normal((12, 4))
        w = sigmoid_weights(np.random.default_rng(seed + 100).standard_normal(12))
        picks = greedy_d_optimal(z, 4, weights=w, shortlist=3, block=2).indices.tolist()
        for step in range(1, 5):
            # Each pick maximises the log-det over every candidate, given the earlier picks.
            best = max(
                (i for i in range(12) if i not in picks[: step - 1]),
                key=lambda i: log_det_gain(z, [*picks[: step - 1], i], weights=w),
            )
            assert picks[step - 1] == best


def test_greedy_is_within_the_submodular_bound_of_the_best_subset():
    z = np.random.default_rng(7).standard_normal((10, 3))
    greedy = log_det_gain(z, greedy_d_optimal(z, 3).indices)
    best = max(log_det_gain(z, subset) for subset in itertools.combinations(range(10), 3))
    assert greedy >= (1 - 1 / np.e) * best
    assert greedy <= best + 1e-9


@pytest.mark.parametrize("shortlist,block", [(1, 1), (8, 4), (64, 64), (10_000, 3)])
def test_blocked_lazy_and_eager_greedy_pick_the_same_items(shortlist, block):
    z = low_rank_pool(600, 24, rank=6, seed=3)
    w = sigmoid_weights(np.random.default_rng(4).standard_normal(600) * 2)
    eager = eager_greedy_d_optimal(z, 40, weights=w)
    blocked = greedy_d_optimal(z, 40, weights=w, shortlist=shortlist, block=block)
    lazy, evaluations = lazy_greedy_d_optimal(z, 40, weights=w)
    assert blocked.indices.tolist() == eager.indices.tolist()
    assert lazy.indices.tolist() == eager.indices.tolist()
    np.testing.assert_allclose(blocked.scores, eager.scores, rtol=1e-9, atol=1e-12)
    assert evaluations > 0
    # Gains only shrink: submodularity.
    assert np.all(np.diff(eager.scores) <= 1e-12)


def test_scores_after_many_rank_one_updates_equal_a_fresh_computation():
    z = low_rank_pool(300, 16, rank=5, seed=9)
    inverse = Design.prior(16, lam=0.5).inverse
    scores = initial_scores(z, np.ones(300), inverse)
    for index in range(200):  # far more updates than any round
        inverse, u = rank_one_step(inverse, z[index], 1.0)
        scores = scores - (z @ u) ** 2
    v = 0.5 * np.eye(16) + z[:200].T @ z[:200]
    fresh = np.einsum("ij,jk,ik->i", z, np.linalg.inv(v), z)
    # Stated bound: 1e-8 relative to the largest initial score, in float64.
    assert np.max(np.abs(scores - fresh)) <= 1e-8 * initial_scores(z, np.ones(300), np.eye(16) / 0.5).max()
    np.testing.assert_allclose(inverse, np.linalg.inv(v), atol=1e-10)


def test_a_labelled_design_steers_picks_away_from_what_is_known():
    z = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    known = Design.prior(2, lam=1.0, labelled=np.array([[1.0, 0.0]] * 50))
    assert greedy_d_optimal(z, 1, design=known).indices.tolist() == [1]
    assert greedy_d_optimal(z, 1).indices.tolist() == [0]


def test_float32_pool_is_read_in_float32_and_still_matches_eager_picks():
    z = low_rank_pool(2000, 32, rank=8, seed=11, dtype=np.float32)
    assert greedy_d_optimal(z, 30, shortlist=128, block=8).indices.tolist() == eager_greedy_d_optimal(z, 30).indices.tolist()


def test_kwise_greedy_uses_every_pair_difference_and_matches_brute_force():
    rng = np.random.default_rng(5)
    responses = rng.standard_normal((8, 3, 4))  # 8 queries of 3 responses, 4 dims
    groups = [np.stack([r[a] - r[b] for a, b in itertools.combinations(range(3), 2)]) for r in responses]

    def value(chosen):
        rows = np.concatenate([groups[q] for q in chosen]) if chosen else np.zeros((0, 4))
        return np.linalg.slogdet(np.eye(4) + rows.T @ rows)[1]

    picks = greedy_d_optimal_kwise(groups, 3).indices.tolist()
    for step in range(1, 4):
        best = max((q for q in range(8) if q not in picks[: step - 1]), key=lambda q: value([*picks[: step - 1], q]))
        assert picks[step - 1] == best


def test_uncertainty_picks_the_highest_variance_pair_of_an_ensemble():
    margins = np.array([[0.1, 2.0, -1.0, 0.0], [0.2, -2.0, 1.0, 0.0], [0.0, 2.1, -1.0, 0.0]])
    assert select_uncertain(margins, 2).indices.tolist() == [1, 2]


def test_uncertainty_with_one_model_picks_the_smallest_margin():
    assert select_uncertain(np.array([3.0, -0.1, 0.5, -2.0]), 2).indices.tolist() == [1, 2]


def test_random_is_reproducible_distinct_and_capped_at_the_pool():
    a, b = select_random(100, 10, seed=1), select_random(100, 10, seed=1)
    assert a.indices.tolist() == b.indices.tolist()
    assert len(set(a.indices.tolist())) == 10
    assert select_random(100, 10, seed=2).indices.tolist() != a.indices.tolist()
    assert len(select_random(5, 10, seed=0)) == 5


def test_offline_design_meets_the_kiefer_wolfowitz_stopping_rule():
    z = low_rank_pool(400, 6, rank=6, seed=2)
    design = frank_wolfe_design(z, 20, epsilon=0.05)
    assert design.converged
    v = (z * design.weights[:, None]).T @ z
    variances = np.einsum("ij,jk,ik->i", z, np.linalg.inv(v), z)
    assert variances.max() <= 6 * 1.05 + 1e-6
    assert abs(design.weights.sum() - 1) < 1e-9
    assert len(set(design.selection.indices.tolist())) == 20
    # The rounded design is informative: better than a random batch of the same size.
    random_value = np.mean([log_det_gain(z, select_random(400, 20, seed=s).indices) for s in range(10)])
    assert log_det_gain(z, design.selection.indices) > random_value


def test_random_projection_is_seeded_and_keeps_distances_roughly():
    z = np.random.default_rng(0).standard_normal((50, 512))
    p1, m1 = random_projection(z, 128, seed=3)
    p2, _ = random_projection(z, 128, seed=3)
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (50, 128) and m1.shape == (512, 128)
    ratio = np.linalg.norm(p1[0] - p1[1]) / np.linalg.norm(z[0] - z[1])
    assert 0.7 < ratio < 1.3


def test_bad_input_is_refused_naming_what_is_wrong():
    with pytest.raises(ValueError, match="NaN"):
        greedy_d_optimal(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError, match="one value per query"):
        greedy_d_optimal(np.ones((3, 2)), 1, weights=np.ones(2))
    with pytest.raises(ConfigError) as unknown_strategy:
        strategy_params("best_guess", {})
    assert unknown_strategy.value.field == "selection_strategy"
    with pytest.raises(ConfigError) as unknown_key:
        strategy_params("d_optimal", {"lambda": 2})
    assert unknown_key.value.field == "selection_params" and "lambda" in str(unknown_key.value)
    with pytest.raises(ConfigError) as bad_value:
        strategy_params("d_optimal", {"lam": 0})
    assert bad_value.value.field == "selection_params.lam"
    with pytest.raises(ConfigError) as bad_type:
        strategy_params("d_optimal", {"projection_dims": "64"})
    assert bad_type.value.field == "selection_params.projection_dims"
    with pytest.raises(ConfigError) as too_many_dims:
        strategy_params("d_optimal_offline", {"projection_dims": 1024})
    assert too_many_dims.value.field == "selection_params.projection_dims"
    assert strategy_params("d_optimal", {"lam": 2, "projection_dims": None}) == DOptimalParams(lam=2.0, projection_dims=None)
