"""Bias flags: statistics on one annotator's answers that hint at shortcuts (after "Cascading Biases").

A flag is evidence for a manager, never a verdict: each comes with the numbers behind it. Plain
Python, no Django: callers pass plain values (milliseconds, word counts, choices, edges).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# Words per minute above which an answer cannot have come from reading its responses: four times
# an adult's ordinary reading speed (about 250 wpm), i.e. skimming at best.
FLOOR_WORDS_PER_MINUTE = 1000
# A test's p-value below this raises the flag.
ALPHA = 0.01
# Straight-lining: answers with ratings needed, and the share of them with one value throughout.
STRAIGHT_MIN_ANSWERS = 5
STRAIGHT_SHARE = 0.8
# Too fast: the share of an annotator's answers under the floor that raises the annotator's flag.
TOO_FAST_SHARE = 0.1


def reading_floor_ms(words: int) -> float:
    """The least time, in milliseconds, in which `words` words can be read at FLOOR_WORDS_PER_MINUTE."""
    return words * 60_000 / FLOOR_WORDS_PER_MINUTE


def is_too_fast(ms: int | None, words: int) -> bool:
    """An answer given in less than the reading floor of its responses' words; no time known is not flagged."""
    return ms is not None and ms < reading_floor_ms(words)


def binomial_two_sided(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test: the probability under Binomial(n, p) of every outcome no likelier than k.

    As scipy.stats.binomtest does, with a small relative tolerance so that ties in probability count.
    """
    if n == 0:
        return 1.0
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0

    def pmf(i: int) -> float:
        return math.exp(
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
        )

    observed = pmf(k)
    total = sum(q for q in (pmf(i) for i in range(n + 1)) if q <= observed * (1 + 1e-7))
    return min(1.0, total)


def binomial_flag(k: int, n: int, p: float, *, expected_label: str, above_only: bool = False) -> dict:
    """The figures of a binomial flag: n, k, rate, the rate expected, p-value and whether it is raised.

    `above_only` raises it only when the rate is above the expected one (picking the longer response
    less often than others is not a shortcut).
    """
    p_value = binomial_two_sided(k, n, p)
    rate = k / n if n else None
    raised = n > 0 and p_value < ALPHA and (not above_only or rate > p)
    return {"n": n, "k": k, "rate": rate, expected_label: p, "p_value": p_value, "alpha": ALPHA, "raised": raised}


def is_straight_lined(values: Iterable[int]) -> bool:
    """One answer's ratings (two or more, across responses and aspects) that all have one value."""
    values = list(values)
    return len(values) >= 2 and len(set(values)) == 1


def cycle_edges(edges: Iterable[tuple[object, object]]) -> set[tuple[object, object]]:
    """The edges (winner, loser) that lie on a directed cycle: A>B, B>C, C>A.

    An edge u→v is on a cycle exactly when u can be reached from v. Graphs here are one prompt's
    responses, a handful of nodes, so a search per edge is cheap.
    """
    edges = set(edges)
    successors: dict[object, set] = {}
    for winner, loser in edges:
        successors.setdefault(winner, set()).add(loser)

    def reaches(start: object, goal: object) -> bool:
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            for following in successors.get(node, ()):
                if following not in seen:
                    seen.add(following)
                    stack.append(following)
        return False

    return {(winner, loser) for winner, loser in edges if reaches(loser, winner)}
