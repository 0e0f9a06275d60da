"""learning.reward.evaluate: pairwise figures, calibration, agreement, F1 and Spearman by hand."""

import math

import pytest

from learning.reward.evaluate import (
    binary_f1,
    evaluate_pairs,
    expected_calibration_error,
    mean_log_likelihood,
    pairwise_accuracy,
    pairwise_calibration_error,
    per_annotator_agreement,
    spearman,
    wilson_interval,
)


def test_accuracy_and_log_likelihood_of_reward_differences():
    assert pairwise_accuracy([2.0, -1.0, 0.0, 0.5]) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert mean_log_likelihood([0.0]) == pytest.approx(math.log(0.5))
    assert mean_log_likelihood([-1000.0]) == pytest.approx(-1000.0)
    assert pairwise_accuracy([]) is None and mean_log_likelihood([]) is None


def test_expected_calibration_error_over_ten_bins():
    # bins 0, 1 and 9 hold one prediction each: (|0 - 0.05| + |1 - 0.15| + |1 - 0.95|) / 3
    ece = expected_calibration_error([0.05, 0.15, 0.95], [False, True, True])
    assert ece == pytest.approx((0.05 + 0.85 + 0.05) / 3)
    assert expected_calibration_error([1.0], [True]) == pytest.approx(0.0)  # p = 1 lands in the top bin


def test_pairwise_calibration_uses_both_orientations_of_each_pair():
    assert pairwise_calibration_error([0.0]) == pytest.approx(0.0)  # 50% said, 50% happened
    # σ(log 3) = 0.75 for a pair the chosen side always wins: 25 points over-cautious.
    assert pairwise_calibration_error([math.log(3)]) == pytest.approx(0.25)
    # One right and one wrong at 75% confidence: accuracy 50% in each used bin.
    assert pairwise_calibration_error([math.log(3), -math.log(3)]) == pytest.approx(0.25)


def test_per_annotator_agreement_counts_agreements_and_totals():
    table = per_annotator_agreement([1.0, -1.0, 2.0, 0.5], ["b", "b", "", "a"])
    assert table == {"a": (1, 1), "b": (1, 2)}


def test_evaluate_pairs_adds_davidson_likelihood_when_given_ties():
    result = evaluate_pairs([1.0], tie_differences=[0.0], log_nu=0.0, annotators=["x"])
    z = math.exp(0.5) + math.exp(-0.5) + 1
    assert result["davidson_log_likelihood"] == pytest.approx((math.log(math.exp(0.5) / z) + math.log(1 / 3)) / 2)
    assert result["per_annotator_agreement"] == {"x": (1, 1)} and result["n"] == 1
    assert evaluate_pairs([1.0])["davidson_log_likelihood"] is None


def test_binary_f1_and_its_undefined_cases():
    scores = binary_f1([True, True, False, False], [True, False, True, False])
    assert (scores["precision"], scores["recall"], scores["f1"], scores["support"]) == (0.5, 0.5, 0.5, 2)
    assert binary_f1([False, False], [False, False])["f1"] is None


def test_spearman_with_ties_and_constant_inputs():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x ranks with a tie: 1, 2.5, 2.5, 4 against 1..4: 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_wilson_interval_matches_the_textbook_figures_and_stays_inside_zero_one():
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73  # not zero-width at p = 1
    assert wilson_interval(0, 0) is None


def test_wilson_interval_holds_its_proportion_even_at_zero_and_one_despite_rounding():
    # At 0 of 2 the bounds' formula gave a lower bound of 2.8e-17 above the accuracy of 0.
    for n in range(1, 200):
        for successes in (0, 0.5, n / 2, n - 0.5, n):
            low, high = wilson_interval(successes, n)
            assert 0.0 <= low <= successes / n <= high <= 1.0, (successes, n)
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0


def test_evaluate_pairs_reports_accuracy_with_its_95_percent_interval():
    result = evaluate_pairs([1.0] * 8 + [-1.0] * 2)
    assert result["accuracy"] == 0.8
    assert result["accuracy_ci95"] == pytest.approx(list(wilson_interval(8, 10)))
    assert evaluate_pairs([])["accuracy_ci95"] is None


def test_margins_shift_likelihood_and_calibration_but_not_accuracy():
    plain = evaluate_pairs([1.0, 2.0])
    with_margins = evaluate_pairs([1.0, 2.0], margins=[1.0, 1.0])
    assert with_margins["accuracy"] == plain["accuracy"] == 1.0
    assert with_margins["log_likelihood"] == pytest.approx((math.log(0.5) + math.log(1 / (1 + math.exp(-1)))) / 2)
    assert with_margins["ece"] == pytest.approx(pairwise_calibration_error([0.0, 1.0]))
    assert with_margins["log_likelihood"] < plain["log_likelihood"]
