"""learning.reward.losses: BT, Davidson ties, Plackett–Luce, ranking splits and ensemble aggregation."""

import math

import pytest
import torch

from learning.reward.losses import (
    aggregate_rewards,
    bradley_terry_loss,
    davidson_log_probabilities,
    davidson_tie_loss,
    groups_to_levels,
    plackett_luce_loss,
    ranking_to_pairs,
)


def test_bradley_terry_loss_matches_a_hand_computed_value():
    # differences 1 and -1: (log(1 + e^-1) + log(1 + e)) / 2
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert loss.item() == pytest.approx((0.3132616875 + 1.3132616875) / 2, abs=1e-6)


def test_bradley_terry_margin_is_subtracted_from_the_reward_difference():
    # differences minus margins: 1 - 0.5 and -1 - 0: (log(1 + e^-0.5) + log(1 + e)) / 2
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.0]))
    expected = (math.log1p(math.exp(-0.5)) + math.log1p(math.e)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(0.8936693, abs=1e-6)


def test_bradley_terry_loss_stays_finite_for_huge_reward_gaps():
    loss = bradley_terry_loss(torch.tensor([-1000.0]), torch.tensor([1000.0]))
    assert loss.item() == pytest.approx(2000.0)


def test_bradley_terry_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2))


def test_davidson_loss_matches_hand_computed_win_and_tie_values():
    # ν = 1, Δ = 1: Z = e^0.5 + e^-0.5 + 1; a win costs -log(e^0.5 / Z) = 0.6802697,
    # a tie at Δ = 0 costs -log(1/3) = 1.0986123.
    loss = davidson_tie_loss(torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5]), torch.tensor([False, True]), torch.tensor(0.0))
    assert loss.item() == pytest.approx((0.6802697 + math.log(3)) / 2, abs=1e-6)
    win = 1 / (1 + math.exp(-1) + 1 * math.exp(-0.5))  # the textbook form of P(1 ≻ 2)
    assert -math.log(win) == pytest.approx(0.6802697, abs=1e-6)


def test_davidson_probabilities_of_the_three_outcomes_sum_to_one():
    difference = torch.tensor([-3.0, -0.2, 0.0, 1.5, 40.0])
    log_nu = torch.tensor(math.log(0.7))
    first_wins, tie = davidson_log_probabilities(difference, log_nu)
    second_wins, _ = davidson_log_probabilities(-difference, log_nu)
    total = first_wins.exp() + second_wins.exp() + tie.exp()
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)
    # P(tie | Δ = 0) = ν / (2 + ν)
    assert tie[2].exp().item() == pytest.approx(0.7 / 2.7, abs=1e-6)


def test_davidson_with_vanishing_nu_approaches_bradley_terry_for_wins():
    first, second = torch.tensor([0.3, 2.0, -1.0]), torch.tensor([0.0, -1.0, 1.5])
    davidson = davidson_tie_loss(first, second, torch.zeros(3, dtype=torch.bool), torch.tensor(-30.0))
    assert davidson.item() == pytest.approx(bradley_terry_loss(first, second).item(), abs=1e-6)


def test_davidson_margin_shifts_wins_only_and_the_loss_stays_finite():
    first, second = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    ties = torch.tensor([False, True])
    shifted = davidson_tie_loss(first, second, ties, torch.tensor(0.0), torch.tensor([1.0, 1.0]))
    # The win now has Δ - m = 0 (cost log 3 at ν = 1); the tie ignores its margin (cost log 3).
    assert shifted.item() == pytest.approx(math.log(3), abs=1e-6)
    huge = davidson_tie_loss(torch.tensor([-500.0]), torch.tensor([500.0]), torch.tensor([False]), torch.tensor(0.0))
    assert math.isfinite(huge.item()) and huge.item() == pytest.approx(1000.0, rel=1e-6)


def test_plackett_luce_matches_a_hand_computed_three_way_ranking():
    # rewards 2, 1, 0 ranked in that order: -[(2 - log(e^2 + e + 1)) + (1 - log(e + 1)) + 0]
    e = math.e
    expected = math.log(e**2 + e + 1) - 2 + math.log(e + 1) - 1
    loss = plackett_luce_loss(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[0, 1, 2]]))
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_plackett_luce_ties_compete_with_their_own_group():
    # items 0 and 1 tied on top: each term is r_i - logsumexp(all three); item 2's is 0.
    e = math.e
    loss = plackett_luce_loss(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[0, 0, 1]]))
    assert loss.item() == pytest.approx(2 * math.log(e**2 + e + 1) - 3, abs=1e-6)


def test_plackett_luce_equals_bradley_terry_for_two_items():
    torch.manual_seed(0)
    chosen, rejected = torch.randn(16), torch.randn(16)
    rewards = torch.stack([chosen, rejected], dim=1)
    levels = torch.tensor([[0, 1]] * 16)
    assert plackett_luce_loss(rewards, levels).item() == pytest.approx(bradley_terry_loss(chosen, rejected).item(), abs=1e-6)


def test_plackett_luce_ignores_padding_and_keeps_gradients_finite():
    rewards = torch.tensor([[2.0, 1.0, 0.0], [1.0, -1.0, 5.0]], requires_grad=True)
    levels = torch.tensor([[0, 1, 2], [0, 1, -1]])  # the second ranking has two items
    loss = plackett_luce_loss(rewards, levels)
    loss.backward()
    e = math.e
    expected = (math.log(e**2 + e + 1) - 2 + math.log(e + 1) - 1 + math.log1p(math.exp(-2))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert torch.isfinite(rewards.grad).all() and rewards.grad[1, 2] == 0


def test_ranking_splits_into_pairs_without_tied_ones():
    assert ranking_to_pairs([[2], [0, 1], [], [3]]) == [(2, 0), (2, 1), (2, 3), (0, 3), (1, 3)]
    assert ranking_to_pairs([[0, 1]]) == []
    assert groups_to_levels([[2], [0, 1]], 4) == [1, 1, 0, -1]


def test_ensemble_aggregates_mean_worst_case_and_uncertainty_weighted():
    members = torch.tensor([[1.0, 2.0], [3.0, 2.0]])  # two members, two items
    assert aggregate_rewards(members, "mean").tolist() == [2.0, 2.0]
    assert aggregate_rewards(members, "wco").tolist() == [1.0, 2.0]
    assert aggregate_rewards(members, "uwo").tolist() == [1.0, 2.0]  # mean - population variance
    assert aggregate_rewards(members, "uwo", uwo_lambda=0.5).tolist() == [1.5, 2.0]
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_rewards(members, "max")
