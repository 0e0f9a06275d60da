"""learning.flags: the exact binomial test, the reading floor, straight-lining and cycles, by hand."""

import pytest
from scipy.stats import binomtest

from learning import flags


def test_the_two_sided_binomial_test_matches_a_hand_computed_case():
    # 9 of 10 at ½: outcomes no likelier than 9 are 0, 1, 9, 10: (1 + 10 + 10 + 1) / 1024.
    assert flags.binomial_two_sided(9, 10, 0.5) == pytest.approx(22 / 1024)
    assert flags.binomial_two_sided(5, 10, 0.5) == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "n", "p"), [(3, 20, 0.5), (12, 15, 0.3), (0, 7, 0.25), (40, 50, 0.62)])
def test_the_two_sided_binomial_test_agrees_with_scipy(k, n, p):
    assert flags.binomial_two_sided(k, n, p) == pytest.approx(binomtest(k, n, p).pvalue, rel=1e-9)


def test_the_binomial_flag_is_raised_only_below_alpha_and_above_the_rate_when_asked():
    assert flags.binomial_flag(12, 12, 0.5, expected_label="expected_rate")["raised"] is True
    assert flags.binomial_flag(0, 12, 0.5, expected_label="expected_rate")["raised"] is True
    assert flags.binomial_flag(0, 12, 0.5, expected_label="study_rate", above_only=True)["raised"] is False
    assert flags.binomial_flag(7, 12, 0.5, expected_label="expected_rate")["raised"] is False


def test_the_reading_floor_is_the_time_to_read_the_words_at_a_thousand_a_minute():
    assert flags.reading_floor_ms(500) == 30_000
    assert flags.is_too_fast(29_999, 500) and not flags.is_too_fast(30_000, 500)
    assert not flags.is_too_fast(None, 500)


def test_straight_lining_needs_two_ratings_of_one_value():
    assert flags.is_straight_lined([3, 3, 3, 3])
    assert not flags.is_straight_lined([3, 3, 4])
    assert not flags.is_straight_lined([5])


def test_every_edge_of_a_cycle_and_none_outside_it_is_found():
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("a", "d"), ("d", "e")}
    assert flags.cycle_edges(edges) == {("a", "b"), ("b", "c"), ("c", "a")}
    assert flags.cycle_edges({("a", "b"), ("b", "c"), ("a", "c")}) == set()
    assert flags.cycle_edges({(1, 2), (2, 1)}) == {(1, 2), (2, 1)}
