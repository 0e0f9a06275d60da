"""Inter-annotator agreement: raw agreement, Cohen's κ, Fleiss' κ and Krippendorff's α.

Plain Python and numpy; the caller turns its labels into records `(item, annotator, value)` and
builds a `ReliabilityData` (annotators × items, missing where an annotator did not label an item).
Every figure comes with the number of items and ratings it rests on; where it is undefined (no
item labelled twice, every rating the same) its value is None and `reason` says why, so a page
shows the reason instead of a crash or a division by zero.

Krippendorff's α is the `krippendorff` package's; its default level of measurement is interval,
so every call here names the level (nominal for choices, ordinal for ratings).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import krippendorff
import numpy as np

LEVELS = ("nominal", "ordinal")
# Ranking pair orders: the pair's first response (the smaller id) ahead, behind, or tied with it.
AHEAD, BEHIND, TIED = "ahead", "behind", "tied"


@dataclass(frozen=True)
class Figure:
    """An agreement figure and what it rests on: items labelled twice or more, and their ratings.

    `value` is None when the figure is undefined for these labels; `reason` then says why.
    """

    value: float | None
    items: int
    ratings: int
    reason: str = ""

    def as_dict(self) -> dict:
        return {"value": self.value, "items": self.items, "ratings": self.ratings, "reason": self.reason}


@dataclass(frozen=True)
class ReliabilityData:
    """Labels as a matrix: `codes[annotator, item]` is the index of the value in `categories`, NaN if missing.

    For ordinal data `categories` is in ascending order, so code order is value order.
    """

    annotators: tuple[Hashable, ...]
    items: tuple[Hashable, ...]
    categories: tuple[Hashable, ...]
    codes: np.ndarray

    def counts(self) -> np.ndarray:
        """items × categories: how many annotators gave each value to each item."""
        table = np.zeros((len(self.items), len(self.categories)), dtype=int)
        rows, cols = np.nonzero(~np.isnan(self.codes))
        np.add.at(table, (cols, self.codes[rows, cols].astype(int)), 1)
        return table

    def labels_by(self, annotator: Hashable) -> int:
        """How many items the annotator labelled."""
        return int((~np.isnan(self.codes[self.annotators.index(annotator)])).sum())

    def pairable(self) -> np.ndarray:
        """A mask of the items labelled by two annotators or more: only they say anything about agreement."""
        return (~np.isnan(self.codes)).sum(axis=0) >= 2


def reliability_data(
    records: Iterable[tuple[Hashable, Hashable, Hashable]], *, categories: Sequence[Hashable] | None = None
) -> ReliabilityData:
    """Build the matrix from `(item, annotator, value)` records; a repeated (item, annotator) keeps the last value.

    `categories` fixes the values and their order (needed for ordinal data whose values do not sort
    by themselves); by default the values seen, sorted. A value outside `categories` is a ValueError.
    """
    latest: dict[tuple[Hashable, Hashable], Hashable] = {}
    for item, annotator, value in records:
        latest[(item, annotator)] = value
    if categories is None:
        categories = sorted({value for value in latest.values()})
    index = {value: code for code, value in enumerate(categories)}
    items = tuple(dict.fromkeys(item for item, _ in latest))
    annotators = tuple(dict.fromkeys(annotator for _, annotator in latest))
    item_at = {item: i for i, item in enumerate(items)}
    annotator_at = {annotator: j for j, annotator in enumerate(annotators)}
    codes = np.full((len(annotators), len(items)), np.nan)
    for (item, annotator), value in latest.items():
        if value not in index:
            raise ValueError(f"value {value!r} of item {item!r} is not one of the categories {list(categories)}")
        codes[annotator_at[annotator], item_at[item]] = index[value]
    return ReliabilityData(annotators=annotators, items=items, categories=tuple(categories), codes=codes)


def _too_few(items: int) -> Figure | None:
    if items == 0:
        return Figure(None, 0, 0, "no item was labelled by two annotators")
    return None


def raw_agreement(data: ReliabilityData) -> Figure:
    """The share of agreeing pairs of labels on an item, averaged over the items labelled twice or more.

    With the same number of annotators on every item this is Fleiss' observed agreement P̄.
    """
    counts = data.counts()[data.pairable()]
    n = counts.sum(axis=1)
    if undefined := _too_few(len(counts)):
        return undefined
    per_item = (counts * (counts - 1)).sum(axis=1) / (n * (n - 1))
    return Figure(float(per_item.mean()), len(counts), int(n.sum()))


def fleiss_kappa(data: ReliabilityData) -> Figure:
    """Fleiss' κ over the items labelled twice or more: (P̄ − P̄e) / (1 − P̄e).

    P̄ is `raw_agreement`; P̄e the chance agreement from the pooled share of each value. Items may
    have different numbers of annotators (each item's P_i uses its own n_i), which reduces to
    Fleiss' formula when every item has the same number.
    """
    observed = raw_agreement(data)
    if observed.value is None:
        return observed
    counts = data.counts()[data.pairable()]
    shares = counts.sum(axis=0) / counts.sum()
    chance = float((shares**2).sum())
    if chance >= 1.0:
        return Figure(None, observed.items, observed.ratings, "every label has the same value, so κ is undefined")
    return Figure((observed.value - chance) / (1.0 - chance), observed.items, observed.ratings)


def cohen_kappa(data: ReliabilityData, first: Hashable, second: Hashable) -> Figure:
    """Cohen's κ of two annotators over the items both labelled: (p_o − p_e) / (1 − p_e).

    p_e comes from each annotator's own shares of the values on those items.
    """
    a = data.codes[data.annotators.index(first)]
    b = data.codes[data.annotators.index(second)]
    both = ~np.isnan(a) & ~np.isnan(b)
    shared = int(both.sum())
    if shared == 0:
        return Figure(None, 0, 0, "the two annotators labelled no item in common")
    a, b = a[both].astype(int), b[both].astype(int)
    k = len(data.categories)
    observed = float((a == b).mean())
    chance = float((np.bincount(a, minlength=k) / shared) @ (np.bincount(b, minlength=k) / shared))
    if chance >= 1.0:
        return Figure(None, shared, 2 * shared, "both annotators gave one and the same value throughout, so κ is undefined")
    return Figure((observed - chance) / (1.0 - chance), shared, 2 * shared)


def krippendorff_alpha(data: ReliabilityData, *, level: str) -> Figure:
    """Krippendorff's α at the given level of measurement ("nominal" or "ordinal"), over pairable items.

    Ordinal α reads the codes as ranks, so `data.categories` must be in ascending order.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    codes = data.codes[:, data.pairable()]
    ratings = int((~np.isnan(codes)).sum())
    if undefined := _too_few(codes.shape[1]):
        return undefined
    if len(np.unique(codes[~np.isnan(codes)])) < 2:
        return Figure(None, codes.shape[1], ratings, "every label has the same value, so α is undefined")
    value = krippendorff.alpha(reliability_data=codes, level_of_measurement=level)
    return Figure(float(value), codes.shape[1], ratings)


def annotator_agreement(data: ReliabilityData, annotator: Hashable) -> Figure:
    """How often one annotator's label matches another annotator's on the same item, over all such pairs.

    `items` counts the items the annotator shares with at least one other annotator.
    """
    mine = data.codes[data.annotators.index(annotator)]
    counts = data.counts()
    labelled = np.nonzero(~np.isnan(mine))[0]
    others = counts[labelled].sum(axis=1) - 1  # every label on the item but the annotator's own
    matches = counts[labelled, mine[labelled].astype(int)] - 1
    shared = others > 0
    items, pairs = int(shared.sum()), int(others.sum())
    if items == 0:
        return Figure(None, 0, 0, "no other annotator labelled the same items")
    return Figure(int(matches.sum()) / pairs, items, pairs + items)


def pairwise_cohen(data: ReliabilityData, *, min_shared: int = 1) -> list[tuple[Hashable, Hashable, Figure]]:
    """Cohen's κ for every pair of annotators who labelled at least `min_shared` items in common."""
    labelled = ~np.isnan(data.codes)
    rows = []
    for i, j in combinations(range(len(data.annotators)), 2):
        if int((labelled[i] & labelled[j]).sum()) >= min_shared:
            first, second = data.annotators[i], data.annotators[j]
            rows.append((first, second, cohen_kappa(data, first, second)))
    return rows


def ranking_pair_orders(groups: Sequence[Sequence[Hashable]]) -> list[tuple[tuple[Hashable, Hashable], str]]:
    """A ranking (groups best first) as one nominal unit per pair of its members: `((first, second), order)`.

    `first` is the smaller of the two, so two annotators' rankings of the same responses give the
    same units; `order` says whether `first` is AHEAD of, BEHIND or TIED with `second`.
    """
    place = {member: position for position, group in enumerate(groups) for member in group}
    units = []
    for first, second in combinations(sorted(place), 2):
        order = TIED if place[first] == place[second] else AHEAD if place[first] < place[second] else BEHIND
        units.append(((first, second), order))
    return units
