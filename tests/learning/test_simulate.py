"""The fast simulator: labels revealed only when asked, heads that learn, summaries with intervals."""

import numpy as np
import pytest

from learning.select import DOptimalParams, RandomParams, UncertaintyParams
from learning.simulate import (
    Curve,
    GoldLabels,
    RevealedLabels,
    choose_l2,
    fit_gold,
    fit_logistic,
    labels_share,
    labels_share_interval,
    labels_to_reach,
    simulate,
    summarise,
    t_interval,
)


def gold_problem(n=1500, d=12, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(d)
    z = rng.standard_normal((n, d)) * np.linspace(0.2, 2.0, d)  # uneven directions: design matters
    test = rng.standard_normal((500, d)) * np.linspace(0.2, 2.0, d)
    return z, theta, test


class SpyLabels(RevealedLabels):
    """Records every label the simulator could have seen."""

    def __init__(self, labels):
        super().__init__(labels)
        self.handed_out: list[int] = []

    def ask(self, indices):
        self.handed_out.extend(int(i) for i in indices)
        return super().ask(indices)


@pytest.mark.parametrize("params", [RandomParams(), UncertaintyParams(), DOptimalParams(projection_dims=None)])
def test_the_simulator_never_reveals_an_unasked_label_and_never_asks_an_unlabelled_pair(params):
    z, theta, test = gold_problem(n=300)
    labels = np.sign(z @ theta)
    labels[::3] = np.nan  # a third of the pairs have no label: they are no candidates
    oracle = SpyLabels(labels)
    curve = simulate(params, pool_z=z, oracle=oracle, test_z=test, test_y=np.sign(test @ theta), rounds=[20] * 4, seed=1)
    assert curve.labels == [20, 40, 60, 80]
    assert len(oracle.handed_out) == len(set(oracle.handed_out)) == 80  # each label once, only those asked
    assert not any(i % 3 == 0 for i in oracle.handed_out)
    assert oracle.asked == set(oracle.handed_out)


def test_unlabelled_pairs_cannot_be_asked_for():
    with pytest.raises(ValueError, match="no label"):
        RevealedLabels([1.0, np.nan]).ask([1])


def test_heads_learn_the_gold_reward_as_labels_arrive():
    z, theta, test = gold_problem()
    for params in (RandomParams(), DOptimalParams(projection_dims=None)):
        curve = simulate(
            params, pool_z=z, oracle=GoldLabels(z @ theta, seed=3), test_z=test, test_y=np.sign(test @ theta),
            test_p=1 / (1 + np.exp(-(test @ theta))), rounds=[10] + [40] * 5, seed=2,
        )  # fmt: skip
        assert curve.accuracy[-1] > curve.accuracy[0]
        assert curve.accuracy[-1] > 0.85
        assert curve.log_likelihood[-1] > curve.log_likelihood[0]


def test_uncertainty_starts_random_until_a_model_exists():
    z, theta, test = gold_problem(n=200)
    curve = simulate(
        UncertaintyParams(),
        pool_z=z,
        oracle=GoldLabels(z @ theta),
        test_z=test,
        test_y=np.sign(test @ theta),
        rounds=[10, 10],
        seed=0,
    )
    assert curve.chosen_by == ["random", "uncertainty"]


def test_gold_labels_follow_the_bernoulli_and_flip_rates():
    oracle = GoldLabels(np.full(20000, 1.0), temperature=1.0, flip=0.1, seed=0)
    wins = (oracle.ask(range(20000)) > 0).mean()
    p = 1 / (1 + np.exp(-1.0))
    assert abs(wins - (p * 0.9 + (1 - p) * 0.1)) < 0.015


def test_fit_logistic_recovers_a_separating_direction():
    z, theta, _ = gold_problem(n=2000)
    fitted = fit_logistic(z, np.sign(z @ theta), l2=0.1)
    cosine = fitted @ theta / np.linalg.norm(fitted) / np.linalg.norm(theta)
    assert cosine > 0.95


def test_summaries_give_means_with_intervals_and_the_labels_needed():
    curves = [
        Curve("random", 0, [10, 20], [0.6, 0.7], [-0.7, -0.6]),
        Curve("random", 1, [10, 20], [0.62, 0.72], [-0.69, -0.59]),
        Curve("d_optimal", 0, [10, 20], [0.7, 0.75], [-0.6, -0.5]),
        Curve("d_optimal", 1, [10, 20], [0.72, 0.77], [-0.6, -0.5]),
    ]
    rows = summarise(curves)
    first = rows[0]
    assert (first.strategy, first.labels, first.seeds) == ("random", 10, 2)
    assert first.accuracy == pytest.approx(0.61)
    assert first.accuracy_low < 0.61 < first.accuracy_high
    assert labels_to_reach(rows, "d_optimal", 0.71) == 10
    assert labels_to_reach(rows, "random", 0.71) == 20
    assert labels_to_reach(rows, "random", 0.9) is None
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / np.sqrt(3))


def test_the_gold_is_fitted_on_every_label_and_its_temperature_fixes_the_margins_spread():
    z, theta, _ = gold_problem(n=2000)
    labels = np.sign(z @ theta)
    labels[::4] = np.nan  # ties: skipped, not read as labels
    gold, tau = fit_gold(z, labels, margin_std=3.0)
    assert gold @ theta / np.linalg.norm(gold) / np.linalg.norm(theta) > 0.95
    assert np.std(z @ gold / tau) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="at least one label"):
        fit_gold(z, np.full(len(z), np.nan))


def test_choose_l2_takes_the_best_validation_score_and_the_first_on_ties():
    seen = []

    def run(l2):
        seen.append(l2)
        return {0.1: 0.6, 1.0: 0.7, 10.0: 0.7}[l2]

    assert choose_l2(run, [0.1, 1.0, 10.0]) == (1.0, {0.1: 0.6, 1.0: 0.7, 10.0: 0.7})
    assert seen == [0.1, 1.0, 10.0]


def test_choose_l2_on_a_validation_split_prefers_a_weak_prior_when_labels_are_plentiful_and_clean():
    z, theta, test = gold_problem(n=600)
    y = np.sign(test @ theta)

    def run(l2):
        curve = simulate(
            RandomParams(), pool_z=z, oracle=GoldLabels(z @ theta * 5), test_z=test, test_y=y, rounds=[300], seed=0, l2=l2
        )
        return curve.accuracy[-1]

    best, scores = choose_l2(run, [0.01, 1000.0])
    assert best == 0.01 and scores[0.01] > scores[1000.0]


def share_curves(random_acc, better_acc):
    labels = [10, 20, 30, 40]
    curves = []
    for seed, (r, b) in enumerate(zip(random_acc, better_acc, strict=True)):
        curves.append(Curve("random", seed, labels, r, [0.0] * 4))
        curves.append(Curve("d_optimal", seed, labels, b, [0.0] * 4))
    return curves


def test_labels_share_is_the_labels_needed_over_the_reference_s_and_inf_when_never_reached():
    curves = share_curves([[0.5, 0.6, 0.7, 0.8]] * 3, [[0.6, 0.8, 0.8, 0.9]] * 3)
    assert labels_share(curves, "d_optimal") == pytest.approx(20 / 40)
    assert labels_share(curves, "random") == 1.0
    worse = share_curves([[0.5, 0.6, 0.7, 0.8]] * 3, [[0.5, 0.5, 0.5, 0.5]] * 3)
    assert labels_share(worse, "d_optimal") == np.inf


def test_labels_share_interval_resamples_paired_seeds():
    same = share_curves([[0.5, 0.6, 0.7, 0.8]] * 4, [[0.6, 0.8, 0.8, 0.9]] * 4)
    assert labels_share_interval(same, "d_optimal", resamples=200) == (0.5, 0.5, 0.5)  # identical seeds: no spread
    # One seed where d_optimal lags: some resamples need more labels, none fewer than with every seed good.
    mixed = share_curves([[0.5, 0.6, 0.7, 0.8]] * 4, [[0.6, 0.8, 0.8, 0.9]] * 3 + [[0.5, 0.5, 0.5, 0.7]])
    share, low, high = labels_share_interval(mixed, "d_optimal", resamples=500)
    assert low == 0.5 and high > share >= 0.5


def test_the_interval_uses_students_t_for_any_number_of_seeds():
    from learning.simulate import t_quantile_975

    # Table values: df 10, 15, 29; beyond the table, the expansion: df 40 and 100.
    for df, expected in ((10, 2.228), (15, 2.131), (29, 2.045), (40, 2.021), (100, 1.984)):
        assert t_quantile_975(df) == pytest.approx(expected, abs=1e-3), df
    values = np.arange(11.0)  # 11 seeds: df 10, not the 2.045 of df 29
    mean, low, high = t_interval(values)
    assert high - mean == pytest.approx(2.228 * values.std(ddof=1) / np.sqrt(11))


def test_a_summary_never_mixes_label_counts_when_a_seed_misses_a_round():
    curves = [
        Curve("random", 0, [10, 20, 30], [0.6, 0.7, 0.8], [-0.7, -0.6, -0.5]),
        Curve("random", 1, [10, 30], [0.62, 0.84], [-0.69, -0.45]),  # its second round trained no model
    ]
    rows = summarise(curves)
    assert [(r.labels, r.seeds) for r in rows] == [(10, 2), (30, 2)]
    assert rows[1].accuracy == pytest.approx(0.82) and rows[1].log_likelihood == pytest.approx(-0.475)
