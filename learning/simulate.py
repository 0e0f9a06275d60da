"""Simulated annotators and the fast label-efficiency loop (no database, frozen features, a logistic head).

A pool query i is a pair with feature z_i = φ(x, y₁) − φ(x, y₂); its label is +1 when the first
response wins, −1 when the second does. Two sources of truth (ALGORITHMS.md §4):
- `RevealedLabels`: real held-out human labels, each revealed only when a strategy asks for it;
- `GoldLabels`: a gold reward's margins, labels drawn as Bernoulli(σ(Δ/τ)) with ε flips.

`simulate` runs rounds: choose a batch with a strategy, ask the oracle, refit a logistic reward
head on everything asked so far, and measure it on a held-out set. Many seeds run in minutes,
which the full loop through the web services (`manage.py simulate`) cannot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from learning.select import DOptimalParams, OfflineDesignParams, UncertaintyParams
from learning.select.choose import choose_queries


class RevealedLabels:
    """Real labels held back until asked for; a query without a label (NaN) is no candidate."""

    def __init__(self, labels: Sequence[float]):
        self._labels = np.asarray(labels, dtype=np.float64)
        self.asked: set[int] = set()

    @property
    def candidates(self) -> np.ndarray:
        return np.flatnonzero(~np.isnan(self._labels))

    def ask(self, indices: Sequence[int]) -> np.ndarray:
        indices = [int(i) for i in indices]
        if any(np.isnan(self._labels[i]) for i in indices):
            raise ValueError("asked for a query that has no label")
        self.asked.update(indices)
        return self._labels[indices]


class GoldLabels:
    """A gold reward answers: +1 with probability σ(Δ/τ), flipped with probability ε."""

    def __init__(self, gold_margins: Sequence[float], *, temperature: float = 1.0, flip: float = 0.0, seed: int = 0):
        if temperature <= 0 or not 0 <= flip < 0.5:
            raise ValueError("temperature must be above 0 and flip in [0, 0.5)")
        self.margins = np.asarray(gold_margins, dtype=np.float64)
        self.temperature, self.flip = temperature, flip
        self.rng = np.random.default_rng(seed)
        self.asked: set[int] = set()

    @property
    def candidates(self) -> np.ndarray:
        return np.arange(len(self.margins))

    def ask(self, indices: Sequence[int]) -> np.ndarray:
        indices = np.asarray([int(i) for i in indices], dtype=np.int64)
        self.asked.update(indices.tolist())
        p = 1.0 / (1.0 + np.exp(-self.margins[indices] / self.temperature))
        labels = np.where(self.rng.random(len(indices)) < p, 1.0, -1.0)
        flips = self.rng.random(len(indices)) < self.flip
        return np.where(flips, -labels, labels)


def fit_logistic(z: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 50) -> np.ndarray:
    """θ of a Bradley-Terry head without intercept: min Σ log(1 + e^{−y zᵀθ}) + l2/2 ‖θ‖², by Newton steps."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    theta = np.zeros(z.shape[1])
    for _ in range(iterations):
        margin = y * (z @ theta)
        p = 1.0 / (1.0 + np.exp(margin))  # σ(−y zᵀθ)
        gradient = -(z * (y * p)[:, None]).sum(axis=0) + l2 * theta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.eye(z.shape[1])
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta


def fit_gold(z: np.ndarray, y: np.ndarray, *, l2: float = 1.0, margin_std: float = 3.0) -> tuple[np.ndarray, float]:
    """The gold reward of ALGORITHMS.md §4, fixed before any strategy runs: θ and the temperature τ.

    θ is a logistic head fitted on every labelled row (NaN labels are skipped) with the head's
    default L2 of 1; τ makes the gold's margins Δ/τ have standard deviation `margin_std` over `z`,
    so labels drawn as Bernoulli(σ(Δ/τ)) are informative but noisy whatever the features' scale.
    Neither depends on the strategies' heads or on the split they are measured on.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    known = ~np.isnan(y)
    if not known.any() or margin_std <= 0:
        raise ValueError("the gold needs at least one label and a margin_std above 0")
    theta = fit_logistic(z[known], y[known], l2=l2)
    spread = float(np.std(z @ theta))
    if spread == 0:
        raise ValueError("the gold reward is flat: every margin is the same")
    return theta, spread / margin_std


def choose_l2(run, grid: Sequence[float]) -> tuple[float, dict[float, float]]:
    """The L2 weight of `grid` whose `run(l2)` (a validation accuracy) is highest; the first on ties.

    The bench calls it with the random baseline on a validation split carved from the pool, so the
    head every strategy shares is the baseline's best and the test split is never read.
    """
    scores = {float(l2): float(run(float(l2))) for l2 in grid}
    if not scores:
        raise ValueError("the L2 grid is empty")
    best = max(scores, key=scores.get)  # the first of equal scores
    return best, scores


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


@dataclass
class Curve:
    """One strategy, one seed: labels used after each round and the head's held-out figures then."""

    strategy: str
    seed: int
    labels: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    log_likelihood: list[float] = field(default_factory=list)  # mean per held-out pair
    chosen_by: list[str] = field(default_factory=list)  # "random" for a model-needing strategy's first round


def evaluate(theta: np.ndarray, test_z: np.ndarray, test_y: np.ndarray, test_p: np.ndarray | None = None) -> tuple[float, float]:
    """Accuracy against the test labels (ties of Δ̂ = 0 count half) and mean log-likelihood.

    With `test_p` (the gold's probability that the first wins) the log-likelihood is its expectation.
    """
    return heldout_figures(test_z @ theta, test_y, test_p)


def heldout_figures(predicted: np.ndarray, test_y: np.ndarray, test_p: np.ndarray | None = None) -> tuple[float, float]:
    """`evaluate` from predicted margins Δ̂ (first minus second), whatever model made them (the full simulator's)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    accuracy = float(np.mean(np.where(predicted == 0, 0.5, np.sign(predicted) == np.sign(test_y))))
    if test_p is None:
        ll = float(np.mean(log_sigmoid(test_y * predicted)))
    else:
        ll = float(np.mean(test_p * log_sigmoid(predicted) + (1 - test_p) * log_sigmoid(-predicted)))
    return accuracy, ll


def simulate(
    params,
    *,
    pool_z: np.ndarray,
    oracle: RevealedLabels | GoldLabels,
    test_z: np.ndarray,
    test_y: np.ndarray,
    test_p: np.ndarray | None = None,
    rounds: Sequence[int],
    seed: int,
    l2: float = 1.0,
    ensemble: int = 4,
    strategy: str | None = None,
) -> Curve:
    """Run the loop with `params` (a strategy's parameters) for rounds of the given sizes.

    Only the oracle's candidates are ever chosen, and a label is known only once asked for.
    Uncertainty uses a bootstrap ensemble of `ensemble` heads (their Δ variance).
    """
    rng = np.random.default_rng(seed)
    candidates = oracle.candidates
    asked: list[int] = []
    answers: list[float] = []
    theta: np.ndarray | None = None
    members: list[np.ndarray] = []
    curve = Curve(strategy=strategy or type(params).__name__, seed=seed)
    for size in rounds:
        remaining = np.setdiff1d(candidates, np.asarray(asked, dtype=np.int64), assume_unique=False)
        if not len(remaining):
            break
        features = pool_z[remaining]
        margins = None
        if isinstance(params, UncertaintyParams) and members:
            margins = np.stack([features @ m for m in members])
        elif isinstance(params, DOptimalParams | OfflineDesignParams) and theta is not None:
            margins = features @ theta
        selection, chosen_by = choose_queries(
            params,
            size,
            n=len(remaining),
            features=features,
            margins=margins,
            labelled_features=pool_z[asked] if asked else None,
            labelled_margins=(pool_z[asked] @ theta) if (asked and theta is not None) else None,
            seed=seed * 1000 + len(curve.labels),
        )
        picked = remaining[selection.indices]
        answers.extend(oracle.ask(picked).tolist())
        asked.extend(picked.tolist())
        z, y = pool_z[asked], np.asarray(answers)
        theta = fit_logistic(z, y, l2=l2)
        if isinstance(params, UncertaintyParams):
            members = [fit_logistic(z[b], y[b], l2=l2) for b in (rng.integers(0, len(y), len(y)) for _ in range(ensemble))]
        accuracy, ll = evaluate(theta, test_z, test_y, test_p)
        curve.labels.append(len(asked))
        curve.accuracy.append(accuracy)
        curve.log_likelihood.append(ll)
        curve.chosen_by.append(chosen_by)
    return curve


@dataclass(frozen=True)
class SummaryRow:
    strategy: str
    labels: int
    seeds: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    log_likelihood: float
    log_likelihood_low: float
    log_likelihood_high: float


# Student's t 0.975 quantiles by degrees of freedom, 1 to 29 (from tables); further on, a
# Cornish-Fisher expansion around the normal's, within 0.001 of the table from 30 on.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (the half-width factor of a 95% interval)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and its 95% t-interval over seeds (the mean alone when there is one seed)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = t_quantile_975(len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def summarise(curves: Sequence[Curve]) -> list[SummaryRow]:
    """Per strategy and label count: the mean over seeds with its 95% interval.

    A label count is summarised where every seed of the strategy measured at it (a seed may miss
    one: a round that trained no model, a pool cut short), so a mean never mixes label counts.
    """
    rows = []
    for strategy in dict.fromkeys(c.strategy for c in curves):
        mine = [c for c in curves if c.strategy == strategy]
        shared = set(mine[0].labels).intersection(*(c.labels for c in mine[1:]))
        for labels in sorted(shared):
            at = [c.labels.index(labels) for c in mine]
            acc = t_interval([c.accuracy[i] for c, i in zip(mine, at, strict=True)])
            ll = t_interval([c.log_likelihood[i] for c, i in zip(mine, at, strict=True)])
            rows.append(SummaryRow(strategy, labels, len(mine), *acc, *ll))
    return rows


def labels_to_reach(rows: Sequence[SummaryRow], strategy: str, target: float) -> int | None:
    """The fewest labels at which `strategy`'s mean accuracy reaches `target` (None: never)."""
    for row in rows:
        if row.strategy == strategy and row.accuracy >= target:
            return row.labels
    return None


def labels_share(curves: Sequence[Curve], strategy: str, *, reference: str = "random") -> float:
    """Labels `strategy` needs to reach `reference`'s final mean accuracy, as a share of the reference's labels.

    inf when it never reaches it within its curve.
    """
    rows = summarise([c for c in curves if c.strategy in (strategy, reference)])
    final = [r for r in rows if r.strategy == reference][-1]
    needed = labels_to_reach(rows, strategy, final.accuracy)
    return math.inf if needed is None else needed / final.labels


def labels_share_interval(
    curves: Sequence[Curve], strategy: str, *, reference: str = "random", resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """`labels_share` and its 95% bootstrap interval over seeds.

    Seeds are paired (seed s of every strategy sees the same oracle draws), so one resample of
    seed numbers is applied to both strategies. A resample that never reaches the target counts
    as inf, so the interval's top may be inf.
    """
    seeds = sorted({c.seed for c in curves if c.strategy == strategy} & {c.seed for c in curves if c.strategy == reference})
    if not seeds:
        raise ValueError(f"no seed has curves of both {strategy!r} and {reference!r}")
    by_seed = {(c.strategy, c.seed): c for c in curves}
    rng = np.random.default_rng(seed)
    shares = []
    for _ in range(resamples):
        drawn = rng.choice(seeds, size=len(seeds))
        sample = [by_seed[name, s] for s in drawn for name in (strategy, reference)]  # a seed drawn twice counts twice
        shares.append(labels_share(sample, strategy, reference=reference))
    low, high = np.quantile(np.asarray(shares), [0.025, 0.975], method="inverted_cdf")
    share = labels_share([by_seed[n, s] for s in seeds for n in (strategy, reference)], strategy, reference=reference)
    return share, float(low), float(high)


CSV_COLUMNS = [
    "strategy", "labels", "seeds", "accuracy", "accuracy_low", "accuracy_high",
    "log_likelihood", "log_likelihood_low", "log_likelihood_high",
]  # fmt: skip


def write_csv(rows: Sequence[SummaryRow], path) -> None:
    """The summary as CSV, one row per strategy and label count."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    getattr(row, column) if isinstance(getattr(row, column), str | int) else f"{getattr(row, column):.5f}"
                    for column in CSV_COLUMNS
                ]
            )


def plot(rows: Sequence[SummaryRow], path, *, title: str) -> None:
    """Held-out accuracy and log-likelihood against labels, one line per strategy with its 95% band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for strategy in dict.fromkeys(r.strategy for r in rows):
        mine = [r for r in rows if r.strategy == strategy]
        labels = [r.labels for r in mine]
        for axis, key in zip(axes, ("accuracy", "log_likelihood"), strict=True):
            axis.plot(labels, [getattr(r, key) for r in mine], label=strategy)
            axis.fill_between(
                labels, [getattr(r, f"{key}_low") for r in mine], [getattr(r, f"{key}_high") for r in mine], alpha=0.2
            )
    axes[0].set_ylabel("held-out accuracy")
    axes[1].set_ylabel("held-out log-likelihood per pair")
    for axis in axes:
        axis.set_xlabel("labels")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
