"""One label per item from several annotators' labels: majority vote, Dawid-Skene, and a
Bradley-Terry model with a reliability per annotator.

Plain numpy. Majority vote trusts every annotator alike; the other two estimate how far each
annotator can be trusted from the labels themselves, so a careless annotator (or one who clicks at
random) counts for less. Inputs are plain records; outputs are dicts keyed by the caller's ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# The pairwise outcomes Dawid-Skene and majority vote work over (both-bad says nothing about order).
PAIR_CLASSES = ("a", "b", "tie")


def majority_vote(labels: Iterable[tuple[Hashable, Hashable]], *, split: Hashable = "tie") -> dict[Hashable, Hashable]:
    """The most given label per item, from `(item, label)` records.

    When two labels or more share the top count the item gets `split` ("tie" by default: annotators
    split evenly between A and B, or between a side and a tie, have not said that either side is better).
    """
    per_item: dict[Hashable, Counter] = {}
    for item, label in labels:
        per_item.setdefault(item, Counter())[label] += 1
    result = {}
    for item, counts in per_item.items():
        (top, n), *rest = counts.most_common()
        result[item] = split if rest and rest[0][1] == n else top
    return result


@dataclass(frozen=True)
class DawidSkene:
    """A fitted Dawid-Skene model.

    `posteriors[item]` maps each class to its probability; `labels[item]` is the likeliest class;
    `confusions[annotator][true, given]` is the chance the annotator gives `given` when `true` holds
    (rows and columns in `classes` order); `accuracy[annotator]` is the expected share of their
    labels that were right; `priors` the classes' shares.
    """

    classes: tuple[Hashable, ...]
    posteriors: dict[Hashable, dict[Hashable, float]]
    labels: dict[Hashable, Hashable]
    confusions: dict[Hashable, np.ndarray]
    accuracy: dict[Hashable, float]
    priors: dict[Hashable, float]
    iterations: int
    converged: bool


def dawid_skene(
    records: Iterable[tuple[Hashable, Hashable, Hashable]],
    *,
    classes: Sequence[Hashable] = PAIR_CLASSES,
    smoothing: float = 0.5,
    max_iter: int = 200,
    tol: float = 1e-6,
) -> DawidSkene:
    """Fit Dawid-Skene by EM on `(item, annotator, label)` records (Dawid & Skene, 1979).

    Starts from the soft majority vote; each M-step adds `smoothing` pseudo-counts to every cell of
    every confusion matrix and to the priors, so an annotator with few labels (or a class nobody
    gave) never gets a probability of exactly 0 or 1. Stops when no posterior moves by more than
    `tol`, or after `max_iter` rounds (`converged` says which).
    """
    classes = tuple(classes)
    class_at = {c: k for k, c in enumerate(classes)}
    triples = list(records)
    for item, _, label in triples:
        if label not in class_at:
            raise ValueError(f"label {label!r} of item {item!r} is not one of {list(classes)}")
    items = list(dict.fromkeys(item for item, _, _ in triples))
    annotators = list(dict.fromkeys(annotator for _, annotator, _ in triples))
    item_at = {item: i for i, item in enumerate(items)}
    annotator_at = {a: j for j, a in enumerate(annotators)}
    ii = np.array([item_at[t[0]] for t in triples], dtype=int)
    jj = np.array([annotator_at[t[1]] for t in triples], dtype=int)
    ll = np.array([class_at[t[2]] for t in triples], dtype=int)
    k, n_items, n_annotators = len(classes), len(items), len(annotators)

    posterior = np.zeros((n_items, k))
    np.add.at(posterior, (ii, ll), 1.0)
    posterior /= posterior.sum(axis=1, keepdims=True)
    converged, iteration = False, 0
    while not converged and iteration < max_iter:
        iteration += 1
        # M-step: priors and each annotator's confusion matrix from the current posteriors.
        priors = (posterior.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        confusion = np.full((n_annotators, k, k), float(smoothing))
        np.add.at(confusion, (jj, slice(None), ll), posterior[ii])
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step: each item's posterior over the true class, in logs for long label lists.
        with np.errstate(divide="ignore"):  # smoothing 0 makes impossible cells log 0 = -inf, as it should
            log_post = np.tile(np.log(priors), (n_items, 1))
            np.add.at(log_post, ii, np.log(confusion[jj, :, ll]))
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        converged = float(np.abs(updated - posterior).max()) < tol
        posterior = updated

    right = np.zeros(n_annotators)
    np.add.at(right, jj, posterior[ii, ll])  # each label's chance of being the true class
    given = np.bincount(jj, minlength=n_annotators)
    return DawidSkene(
        classes=classes,
        posteriors={item: dict(zip(classes, map(float, posterior[i]), strict=True)) for i, item in enumerate(items)},
        labels={item: classes[int(posterior[i].argmax())] for i, item in enumerate(items)},
        confusions={a: confusion[j] for j, a in enumerate(annotators)},
        accuracy={a: float(right[j] / given[j]) for j, a in enumerate(annotators)},
        priors=dict(zip(classes, map(float, priors), strict=True)),
        iterations=iteration,
        converged=converged,
    )


@dataclass(frozen=True)
class ReliableBradleyTerry:
    """A fitted Bradley-Terry model with one reliability per annotator.

    `scores[response]`: the strength of each response (P(x beats y) = σ(s_x − s_y) for a faithful
    label); `reliability[annotator]`: ρ, the chance their label follows the scores rather than its
    opposite (1 always faithful, 0.5 a coin, below 0.5 mostly reversed); `weight[annotator]`:
    log(ρ / (1 − ρ)), how much one of their labels moves the scores (0 for a coin).
    """

    scores: dict[Hashable, float]
    reliability: dict[Hashable, float]
    weight: dict[Hashable, float]
    log_likelihood: float
    iterations: int
    converged: bool

    def prefers(self, first: Hashable, second: Hashable) -> float:
        """P(first beats second) by the scores alone, as a faithful annotator would say."""
        return float(_sigmoid(self.scores[first] - self.scores[second]))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x)))


def bt_reliability_objective(
    scores: np.ndarray,
    reliability: np.ndarray,
    winners: np.ndarray,
    losers: np.ndarray,
    annotators: np.ndarray,
    *,
    l2: float,
    prior: float,
) -> float:
    """The penalised log-likelihood that `bt_reliability` maximises (arrays of codes, one per comparison).

    Σ log(ρ_j σ(d) + (1 − ρ_j) σ(−d)) with d = s_winner − s_loser, minus l2/2 · Σ s², plus a
    Beta(1 + prior, 1 + prior) log-density on each ρ (up to a constant).
    """
    sd = _sigmoid(scores[winners] - scores[losers])
    rho = reliability[annotators]
    likelihood = np.log(rho * sd + (1.0 - rho) * (1.0 - sd)).sum()
    return float(likelihood - 0.5 * l2 * (scores**2).sum() + prior * (np.log(reliability) + np.log(1.0 - reliability)).sum())


def bt_reliability(
    comparisons: Iterable[tuple[Hashable, Hashable, Hashable]],
    *,
    l2: float = 0.1,
    prior: float = 1.0,
    start: float = 0.8,
    max_iter: int = 500,
    tol: float = 1e-6,
) -> ReliableBradleyTerry:
    """Fit scores and reliabilities by EM on `(annotator, winner, loser)` records (ties have no place here).

    Each label is faithful with probability ρ_j, else reversed. The E-step weighs each label by the
    chance it was faithful; the M-step sets ρ_j to their annotator's mean weight (with `prior`
    pseudo-counts on each side) and takes ascent steps on the scores under a quadratic bound
    (curvature ≤ degree/2 + l2), so every step raises the objective. Starting every ρ at `start`
    (above 0.5) picks the solution where most annotators are faithful over its mirror image.
    """
    records = list(comparisons)
    annotator_ids = list(dict.fromkeys(a for a, _, _ in records))
    response_ids = list(dict.fromkeys(r for _, w, lo in records for r in (w, lo)))
    annotator_at = {a: j for j, a in enumerate(annotator_ids)}
    response_at = {r: i for i, r in enumerate(response_ids)}
    who = np.array([annotator_at[a] for a, _, _ in records], dtype=int)
    winners = np.array([response_at[w] for _, w, _ in records], dtype=int)
    losers = np.array([response_at[lo] for _, _, lo in records], dtype=int)
    n = len(response_ids)
    scores = np.zeros(n)
    reliability = np.full(len(annotator_ids), start)
    given = np.bincount(who, minlength=len(annotator_ids))
    bound = 0.5 * (np.bincount(winners, minlength=n) + np.bincount(losers, minlength=n)) + l2
    converged, iteration = False, 0
    while not converged and iteration < max_iter:
        iteration += 1
        sd = _sigmoid(scores[winners] - scores[losers])
        rho = reliability[who]
        faithful = rho * sd / (rho * sd + (1.0 - rho) * (1.0 - sd))
        new_reliability = (np.bincount(who, weights=faithful, minlength=len(annotator_ids)) + prior) / (given + 2 * prior)
        new_scores = scores.copy()
        for _ in range(5):
            residual = faithful - _sigmoid(new_scores[winners] - new_scores[losers])
            gradient = np.bincount(winners, residual, n) - np.bincount(losers, residual, n) - l2 * new_scores
            new_scores += gradient / bound
        change = max(
            float(np.abs(new_scores - scores).max(initial=0.0)), float(np.abs(new_reliability - reliability).max(initial=0.0))
        )
        scores, reliability = new_scores, new_reliability
        converged = change < tol
    return ReliableBradleyTerry(
        scores={r: float(scores[i]) for i, r in enumerate(response_ids)},
        reliability={a: float(reliability[j]) for j, a in enumerate(annotator_ids)},
        weight={a: float(np.log(reliability[j] / (1.0 - reliability[j]))) for j, a in enumerate(annotator_ids)},
        log_likelihood=bt_reliability_objective(scores, reliability, winners, losers, who, l2=l2, prior=prior),
        iterations=iteration,
        converged=converged,
    )
