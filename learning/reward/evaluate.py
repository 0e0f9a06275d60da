"""Held-out evaluation figures for reward, span and rating models.

Plain Python (no torch), so the web process can recompute or explain a figure. Pairwise figures
take reward differences Δ = r(better) − r(worse), one per held-out comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def log_sigmoid(x: float) -> float:
    """log σ(x), finite for any x."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return math.exp(log_sigmoid(x))


def pairwise_accuracy(differences: Sequence[float]) -> float | None:
    """Share of comparisons the model orders as the annotator did; Δ = 0 counts half."""
    if not differences:
        return None
    return sum(1.0 if d > 0 else 0.5 if d == 0 else 0.0 for d in differences) / len(differences)


# The normal quantile for a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (95% by default); None when n is 0.

    Unlike p ± z·sqrt(p(1−p)/n) it stays inside [0, 1] and is not zero-width at p = 0 or 1,
    which matters for the small held-out sets of early rounds. ``successes`` may be fractional
    (accuracy counts a zero reward difference as half).
    """
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # The interval contains p; at p = 0 or 1, centre and half are equal only up to rounding
    # (0/2 gave a lower bound of 2.8e-17 above an accuracy of 0), so the bounds are held to p.
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def mean_log_likelihood(differences: Sequence[float]) -> float | None:
    """Mean log P(better ≻ worse) = log σ(Δ) under Bradley–Terry (chance: log ½ ≈ −0.693).

    A model trained with strength margins is judged on Δ − m, the quantity its loss saw.
    """
    if not differences:
        return None
    return sum(log_sigmoid(d) for d in differences) / len(differences)


def expected_calibration_error(probabilities: Sequence[float], outcomes: Sequence[bool], n_bins: int = 10) -> float | None:
    """Σ_b (n_b / N)·|accuracy_b − confidence_b| over ``n_bins`` equal-width bins of [0, 1]."""
    if not probabilities:
        return None
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for probability, outcome in zip(probabilities, outcomes, strict=True):
        bins[min(int(probability * n_bins), n_bins - 1)].append((probability, outcome))
    total = len(probabilities)
    error = 0.0
    for members in bins:
        if members:
            confidence = sum(p for p, _ in members) / len(members)
            accuracy = sum(1.0 for _, o in members if o) / len(members)
            error += len(members) / total * abs(accuracy - confidence)
    return error


def pairwise_calibration_error(differences: Sequence[float], n_bins: int = 10) -> float | None:
    """ECE of P(chosen ≻ rejected) = σ(Δ), 10 bins.

    Seen from the chosen side the outcome is always "chosen won", which no calibration measure
    can use; so each comparison enters in both orientations, (σ(Δ), won) and (σ(−Δ), lost). The
    result equals the usual top-label ECE over confidences max(σ(Δ), σ(−Δ)).
    """
    probabilities = [sigmoid(d) for d in differences] + [sigmoid(-d) for d in differences]
    outcomes = [True] * len(differences) + [False] * len(differences)
    return expected_calibration_error(probabilities, outcomes, n_bins)


def per_annotator_agreement(differences: Sequence[float], annotators: Sequence[str]) -> dict[str, tuple[int, int]]:
    """{annotator: (comparisons where the model agrees (Δ > 0), comparisons)}; unnamed ones skipped."""
    table: dict[str, tuple[int, int]] = {}
    for difference, annotator in zip(differences, annotators, strict=True):
        if not annotator:
            continue
        agree, total = table.get(annotator, (0, 0))
        table[annotator] = (agree + (difference > 0), total + 1)
    return dict(sorted(table.items()))


def davidson_log_likelihood(win_differences: Sequence[float], tie_differences: Sequence[float], log_nu: float) -> float | None:
    """Mean Davidson log-likelihood over wins (Δ = winner − loser) and ties."""

    def log_z(d: float) -> float:
        terms = (d / 2, -d / 2, log_nu)
        top = max(terms)
        return top + math.log(sum(math.exp(t - top) for t in terms))

    values = [d / 2 - log_z(d) for d in win_differences] + [log_nu - log_z(d) for d in tie_differences]
    return sum(values) / len(values) if values else None


def evaluate_pairs(
    differences: Sequence[float],
    *,
    annotators: Sequence[str] | None = None,
    tie_differences: Sequence[float] | None = None,
    log_nu: float | None = None,
    margins: Sequence[float] | None = None,
) -> dict:
    """Every pairwise figure at once: accuracy (with its Wilson 95% interval), log_likelihood,
    ece, per_annotator_agreement, n.

    ``margins`` (one per comparison) are those a model was trained with: the log-likelihood and
    calibration then use P(better ≻ worse) = σ(Δ − m), as its loss did; accuracy is the sign of
    Δ either way. With ``tie_differences`` and ``log_nu`` (a Davidson model), also
    ``davidson_log_likelihood`` over wins and ties together.
    """
    shifted = list(differences)
    if margins is not None:
        shifted = [d - m for d, m in zip(differences, margins, strict=True)]
    accuracy = pairwise_accuracy(differences)
    interval = wilson_interval(accuracy * len(differences), len(differences)) if accuracy is not None else None
    result: dict = {
        "accuracy": accuracy,
        "accuracy_ci95": list(interval) if interval is not None else None,
        "log_likelihood": mean_log_likelihood(shifted),
        "ece": pairwise_calibration_error(shifted),
        "per_annotator_agreement": per_annotator_agreement(differences, annotators) if annotators is not None else {},
        "n": len(differences),
    }
    if tie_differences is not None and log_nu is not None:
        result["davidson_log_likelihood"] = davidson_log_likelihood(shifted, tie_differences, log_nu)
    else:
        result["davidson_log_likelihood"] = None
    return result


def binary_f1(truth: Sequence[bool], predicted: Sequence[bool]) -> dict:
    """Precision, recall and F1 of the positive class, with the counts behind them.

    A figure whose denominator is zero is None (e.g. F1 when there are no positives at all).
    """
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t and p)
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p and not t)
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t and not p)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "n": len(truth)}


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get average ranks); None if either side is constant."""
    if len(x) != len(y):
        raise ValueError(f"lengths differ: {len(x)} vs {len(y)}")
    if len(x) < 2:
        return None
    rx, ry = _average_ranks(x), _average_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    covariance = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    spread = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return covariance / spread if spread > 0 else None
