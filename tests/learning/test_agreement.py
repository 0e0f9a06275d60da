"""Agreement figures against hand-computed tables and Krippendorff's published worked examples."""

import math

import krippendorff
import numpy as np
import pytest

from learning.agreement import (
    AHEAD,
    BEHIND,
    TIED,
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_cohen,
    ranking_pair_orders,
    raw_agreement,
    reliability_data,
)

NAN = math.nan


def records_from_rows(rows: list[list[float]]) -> list[tuple]:
    """(item, annotator, value) records from rows of annotators × items, NaN where missing."""
    return [
        (item, annotator, value) for annotator, row in enumerate(rows) for item, value in enumerate(row) if not math.isnan(value)
    ]


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
# twelve units, nominal data with missing values; published α = 0.743.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]

# The three-coder example of Wikipedia's "Krippendorff's alpha" page (and the krippendorff
# package's README): nominal α = 0.691, interval α = 0.811.
WIKIPEDIA = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]


def test_nominal_alpha_matches_krippendorffs_published_example():
    data = reliability_data(records_from_rows(KRIPPENDORFF_2011))
    figure = krippendorff_alpha(data, level="nominal")
    assert figure.value == pytest.approx(0.743, abs=0.0005)
    # Unit 12 has one value only and says nothing about agreement; 11 units carry 40 values.
    assert (figure.items, figure.ratings) == (11, 40)


def test_nominal_alpha_matches_the_wikipedia_example_and_is_not_the_packages_interval_default():
    data = reliability_data(records_from_rows(WIKIPEDIA))
    assert krippendorff_alpha(data, level="nominal").value == pytest.approx(0.691, abs=0.0005)
    assert krippendorff.alpha(reliability_data=WIKIPEDIA) == pytest.approx(0.811, abs=0.0005)


def test_ordinal_alpha_reads_codes_as_ranks_so_unevenly_spaced_values_give_the_same_figure():
    rows = [[1, 2, 3, 3, 2, 1, 4, 1, 2], [1, 2, 3, 3, 2, 2, 4, 1, 2], [2, 3, 3, 3, 2, 3, 4, 2, 2]]
    spread = {1: 1, 2: 10, 3: 11, 4: 50}
    stretched = [[spread[v] for v in row] for row in rows]
    figure = krippendorff_alpha(reliability_data(records_from_rows(stretched)), level="ordinal")
    expected = krippendorff.alpha(reliability_data=np.array(rows, dtype=float), level_of_measurement="ordinal")
    assert figure.value == pytest.approx(expected)
    nominal = krippendorff_alpha(reliability_data(records_from_rows(rows)), level="nominal")
    assert figure.value != pytest.approx(nominal.value)


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="level must be one of"):
        krippendorff_alpha(reliability_data([("i", "x", 1), ("i", "y", 2)]), level="interval")


def two_rater_table(yy: int, yn: int, ny: int, nn: int) -> list[tuple]:
    """Records of two raters from a 2×2 table (first rater's answer, then the second's)."""
    cells = [("yes", "yes")] * yy + [("yes", "no")] * yn + [("no", "yes")] * ny + [("no", "no")] * nn
    return [(i, rater, answer) for i, pair in enumerate(cells) for rater, answer in zip("AB", pair, strict=True)]


def test_cohens_kappa_matches_the_hand_computed_two_by_two_table():
    # p_o = 35/50 = 0.7; A says yes 25/50, B 30/50: p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = 0.2/0.5 = 0.4.
    data = reliability_data(two_rater_table(20, 5, 10, 15))
    figure = cohen_kappa(data, "A", "B")
    assert figure.value == pytest.approx(0.4)
    assert (figure.items, figure.ratings) == (50, 100)
    assert raw_agreement(data).value == pytest.approx(0.7)


def test_cohens_kappa_is_none_with_a_reason_when_both_always_gave_the_same_answer():
    figure = cohen_kappa(reliability_data(two_rater_table(6, 0, 0, 0)), "A", "B")
    assert figure.value is None
    assert "same value" in figure.reason
    assert figure.items == 6


def test_cohens_kappa_is_none_for_annotators_without_shared_items():
    data = reliability_data([(1, "A", "yes"), (2, "B", "no")])
    assert cohen_kappa(data, "A", "B").value is None
    assert cohen_kappa(data, "A", "B").reason == "the two annotators labelled no item in common"


# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 14 raters, 10 subjects, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_matches_the_worked_table():
    records = []
    for item, counts in enumerate(FLEISS_TABLE):
        values = [category for category, n in enumerate(counts) for _ in range(n)]
        records += [(item, rater, value) for rater, value in enumerate(values)]
    data = reliability_data(records)
    assert raw_agreement(data).value == pytest.approx(0.378, abs=0.0005)
    figure = fleiss_kappa(data)
    assert figure.value == pytest.approx(0.210, abs=0.0005)
    assert (figure.items, figure.ratings) == (10, 140)


def test_fleiss_kappa_with_uneven_raters_uses_each_items_own_count():
    # Item 1: three raters, two agree (P = 2/6); item 2: two raters agree (P = 1). P̄ = 2/3.
    # Pooled shares: x 4/5, y 1/5, so P̄e = 0.68 and κ = (2/3 − 0.68) / 0.32.
    data = reliability_data([(1, "A", "x"), (1, "B", "x"), (1, "C", "y"), (2, "A", "x"), (2, "B", "x"), (3, "C", "y")])
    assert raw_agreement(data).value == pytest.approx(2 / 3)
    figure = fleiss_kappa(data)
    assert figure.value == pytest.approx((2 / 3 - 0.68) / 0.32)
    assert (figure.items, figure.ratings) == (2, 5)  # item 3 had one label


def test_every_figure_is_none_with_a_reason_when_no_item_was_labelled_twice():
    data = reliability_data([(1, "A", "x"), (2, "B", "y")])
    for figure in (raw_agreement(data), fleiss_kappa(data), krippendorff_alpha(data, level="nominal")):
        assert figure.value is None
        assert figure.reason == "no item was labelled by two annotators"
        assert figure.items == 0


def test_kappa_and_alpha_are_none_when_everyone_gave_the_same_value():
    data = reliability_data([(1, "A", "x"), (1, "B", "x"), (2, "A", "x"), (2, "B", "x")])
    assert raw_agreement(data).value == 1.0
    for figure in (fleiss_kappa(data), krippendorff_alpha(data, level="nominal")):
        assert figure.value is None
        assert "same value" in figure.reason
        assert figure.items == 2


def test_a_value_outside_the_given_categories_is_refused_naming_it():
    with pytest.raises(ValueError, match="value 7 of item 'q1'"):
        reliability_data([("q1", "A", 7)], categories=[1, 2, 3])


def test_an_annotators_agreement_with_the_others_counts_every_shared_pair():
    # A agrees with B on 1 and with both on 2, disagrees with B on 3; item 4 is A's alone.
    data = reliability_data(
        [(1, "A", "x"), (1, "B", "x"), (2, "A", "y"), (2, "B", "y"), (2, "C", "y"), (3, "A", "x"), (3, "B", "y"), (4, "A", "x")]
    )
    figure = annotator_agreement(data, "A")
    assert figure.value == pytest.approx(3 / 4)
    assert figure.items == 3
    assert annotator_agreement(reliability_data([(1, "A", "x"), (2, "B", "x")]), "A").value is None


def test_pairwise_cohen_lists_only_pairs_with_enough_shared_items():
    data = reliability_data(two_rater_table(20, 5, 10, 15) + [(100, "C", "yes"), (100, "A", "no")])
    pairs = {(a, b): figure for a, b, figure in pairwise_cohen(data, min_shared=2)}
    assert set(pairs) == {("A", "B")}
    assert pairs[("A", "B")].value == pytest.approx(0.4)
    assert {(a, b) for a, b, _ in pairwise_cohen(data, min_shared=1)} == {("A", "B"), ("A", "C")}


def test_a_ranking_becomes_one_order_per_pair_keyed_by_the_smaller_id():
    assert ranking_pair_orders([[7], [3, 9], [1]]) == [
        ((1, 3), BEHIND),
        ((1, 7), BEHIND),
        ((1, 9), BEHIND),
        ((3, 7), BEHIND),
        ((3, 9), TIED),
        ((7, 9), AHEAD),
    ]
