"""Aggregates: majority vote, Dawid-Skene and Bradley-Terry with reliabilities, on hand-computed
cases and on simulated annotators whose reliabilities are known."""

import numpy as np
import pytest

from learning.aggregate import bt_reliability, bt_reliability_objective, dawid_skene, majority_vote


def test_majority_vote_takes_the_most_given_label_and_calls_a_split_a_tie():
    votes = [(1, "a"), (1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "b"), (4, "tie"), (4, "a")]
    assert majority_vote(votes) == {1: "a", 2: "tie", 3: "b", 4: "tie"}
    assert majority_vote(votes, split=None)[2] is None


def test_dawid_skene_reaches_the_hand_computed_fixed_point():
    # Item 1: both say a; item 2: X says a, Y says b. From the soft majority (1, 0) and (½, ½),
    # without smoothing: priors (¾, ¼); X always says a; Y says a for a true a 2/3 of the time and b
    # for a true b always. Item 2's posterior: a ∝ ¾ · 1 · ⅓ = ¼, b ∝ ¼ · 1 · 1 = ¼, so it stays ½.
    fit = dawid_skene([(1, "X", "a"), (1, "Y", "a"), (2, "X", "a"), (2, "Y", "b")], classes=("a", "b"), smoothing=0)
    assert fit.converged
    assert fit.posteriors[1] == pytest.approx({"a": 1.0, "b": 0.0})
    assert fit.posteriors[2] == pytest.approx({"a": 0.5, "b": 0.5})
    assert fit.priors == pytest.approx({"a": 0.75, "b": 0.25})
    np.testing.assert_allclose(fit.confusions["Y"], [[2 / 3, 1 / 3], [0, 1]])
    assert fit.accuracy["X"] == pytest.approx(0.75)  # item 1 surely right, item 2 half


def test_dawid_skene_refuses_a_label_outside_its_classes():
    with pytest.raises(ValueError, match="label 'both_bad' of item 7"):
        dawid_skene([(7, "X", "both_bad")])


def simulated_pair_labels(accuracies: list[float], n_items: int, per_item: int, seed: int):
    """Labels over {a, b, tie}: each annotator is right with their accuracy, else picks another class at random."""
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "tie"])
    truth = rng.choice(3, size=n_items, p=[0.45, 0.45, 0.1])
    records = []
    for item in range(n_items):
        for annotator in rng.choice(len(accuracies), size=per_item, replace=False):
            if rng.random() < accuracies[annotator]:
                label = truth[item]
            else:
                label = rng.choice([c for c in range(3) if c != truth[item]])
            records.append((item, int(annotator), str(classes[label])))
    return records, {item: str(classes[t]) for item, t in enumerate(truth)}


def test_dawid_skene_recovers_simulated_annotators_accuracies_and_beats_majority_vote():
    accuracies = [0.92, 0.85, 0.8, 0.7, 1 / 3]  # the last one answers at random
    records, truth = simulated_pair_labels(accuracies, n_items=400, per_item=3, seed=1)
    fit = dawid_skene(records)
    assert fit.converged
    for annotator, accuracy in enumerate(accuracies):
        assert fit.accuracy[annotator] == pytest.approx(accuracy, abs=0.06)
    assert min(fit.accuracy, key=fit.accuracy.get) == 4
    majority = majority_vote((item, label) for item, _, label in records)
    right = sum(fit.labels[i] == truth[i] for i in truth)
    assert right > sum(majority[i] == truth[i] for i in truth)
    assert right / len(truth) > 0.85


def comparison_arrays(records):
    annotators = {a: j for j, a in enumerate(dict.fromkeys(a for a, _, _ in records))}
    responses = {r: i for i, r in enumerate(dict.fromkeys(r for _, w, lo in records for r in (w, lo)))}
    winners = np.array([responses[w] for _, w, _ in records])
    losers = np.array([responses[lo] for _, _, lo in records])
    who = np.array([annotators[a] for a, _, _ in records])
    return annotators, responses, winners, losers, who


def test_bt_reliability_on_a_hand_computed_case_predicts_the_observed_share():
    # One annotator, x beat y three times of four: with no penalty or prior the maximum-likelihood
    # chance of "x beats y" is ¾, however it is split between the score gap and the reliability.
    records = [("A", "x", "y")] * 3 + [("A", "y", "x")]
    fit = bt_reliability(records, l2=0.0, prior=0.0, max_iter=5000)
    rho, p = fit.reliability["A"], fit.prefers("x", "y")
    assert rho * p + (1 - rho) * (1 - p) == pytest.approx(0.75, abs=1e-3)


def simulated_comparisons(reliabilities: list[float], n_responses: int, per_annotator: int, seed: int):
    """(annotator, winner, loser) from Bradley-Terry on known scores, each label reversed with chance 1 − ρ."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 1.5, size=n_responses)
    records = []
    for annotator, rho in enumerate(reliabilities):
        for _ in range(per_annotator):
            x, y = rng.choice(n_responses, size=2, replace=False)
            x_wins = rng.random() < 1 / (1 + np.exp(scores[y] - scores[x]))
            if rng.random() >= rho:
                x_wins = not x_wins
            records.append((annotator, int(x), int(y)) if x_wins else (annotator, int(y), int(x)))
    return records, scores


def test_bt_reliability_recovers_simulated_reliabilities_and_gives_a_spammer_little_weight():
    reliabilities = [0.95, 0.9, 0.85, 0.75, 0.5]  # the last one flips a coin
    records, true_scores = simulated_comparisons(reliabilities, n_responses=30, per_annotator=600, seed=2)
    fit = bt_reliability(records)
    assert fit.converged
    for annotator, rho in enumerate(reliabilities):
        assert fit.reliability[annotator] == pytest.approx(rho, abs=0.07)
    assert abs(fit.weight[4]) < 0.3 < min(fit.weight[a] for a in range(4))
    fitted = np.array([fit.scores[i] for i in range(30)])
    assert np.corrcoef(fitted, true_scores)[0, 1] > 0.95


def test_bt_reliability_stops_at_a_maximum_of_its_objective():
    # The fit's gradient, taken by finite differences of the objective, is zero; every nudge lowers it.
    records, _ = simulated_comparisons([0.9, 0.7, 0.5], n_responses=8, per_annotator=150, seed=3)
    fit = bt_reliability(records, tol=1e-10, max_iter=20000)
    annotators, responses, winners, losers, who = comparison_arrays(records)
    scores = np.array([fit.scores[r] for r in responses])
    rho = np.array([fit.reliability[a] for a in annotators])
    point = np.concatenate([scores, rho])

    def objective(x: np.ndarray) -> float:
        return bt_reliability_objective(x[: len(scores)], x[len(scores) :], winners, losers, who, l2=0.1, prior=1.0)

    assert objective(point) == pytest.approx(fit.log_likelihood)
    h = 1e-5
    for k in range(len(point)):
        step = np.zeros_like(point)
        step[k] = h
        assert (objective(point + step) - objective(point - step)) / (2 * h) == pytest.approx(0.0, abs=1e-3)
        assert objective(point + 100 * step) < objective(point)
