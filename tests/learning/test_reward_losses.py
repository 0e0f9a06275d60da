"""learning.reward.losses: Bradley–Terry with and without a strength margin."""

import math

import pytest
import torch

from learning.reward.losses import bradley_terry_loss


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
