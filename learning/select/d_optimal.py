"""D-optimal query selection: greedy log-det over query features, and the offline Frank-Wolfe design.

A pairwise query i has a feature z_i (a difference of response features). Under the linearised
Bradley-Terry / DPO model its Fisher information is V = λI + Σ w_j z_j z_jᵀ over the labelled
queries, with w_j = σ'(z_jᵀθ̂) (w ≡ 1 before a model exists). Greedy selection picks
argmax_i w_i z_iᵀV⁻¹z_i, adds it to V (Sherman-Morrison) and repeats; log-det is monotone
submodular, so greedy is (1 - 1/e)-optimal and a pick's gain only ever shrinks.

The cost is reading the pool, not arithmetic (ALGORITHMS.md §3.1): eager greedy reads every
feature once per pick. `greedy_d_optimal` keeps, for every candidate, a bound (its score after
the updates it has seen; the later ones only lower it) and brings only the highest bounds up to
date, many updates at once in one GEMM, so the pool's tail, too low to win, is not read again.
A shortlist of the best candidates is updated exactly after every pick, and a pick is taken when
it beats every bound outside; otherwise the shortlist is rebuilt. So the picks are the eager
greedy's (up to floating-point ties).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from learning.select import DOptimalParams
from learning.select.common import Selection, check_features, check_weights

BLOCK_ROWS = 8192  # rows of the pool multiplied at once: the products stay in cache-sized pieces


@dataclass(frozen=True)
class Design:
    """The Fisher information a selection starts from: λI plus the labelled queries' w z zᵀ."""

    inverse: np.ndarray  # V⁻¹, (d, d)

    @classmethod
    def prior(
        cls,
        dims: int,
        *,
        lam: float = 1.0,
        labelled: np.ndarray | None = None,
        labelled_weights: np.ndarray | None = None,
        dtype=np.float64,
    ) -> Design:
        """V = λI + Σ w z zᵀ over what is already labelled (nothing before the first round)."""
        if lam <= 0:
            raise ValueError(f"lam must be above 0, not {lam}")
        v = lam * np.eye(dims, dtype=np.float64)
        if labelled is not None and len(labelled):
            labelled = check_features(labelled).astype(np.float64)
            if labelled.shape[1] != dims:
                raise ValueError(f"labelled features have {labelled.shape[1]} dims, the pool {dims}")
            w = check_weights(labelled_weights, len(labelled)).astype(np.float64)
            v += (labelled * w[:, None]).T @ labelled
        return cls(inverse=np.linalg.inv(v).astype(dtype))


def initial_scores(features: np.ndarray, weights: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """w_i z_iᵀ V⁻¹ z_i for every row, in blocks so the (N, d) product is never held whole."""
    scores = np.empty(len(features), dtype=features.dtype)
    diagonal = np.diag(inverse)
    if np.array_equal(inverse, np.diag(diagonal)):  # the prior λI before any label: no (N, d, d) product
        for start in range(0, len(features), BLOCK_ROWS):
            z = features[start : start + BLOCK_ROWS]
            scores[start : start + BLOCK_ROWS] = (z * z) @ diagonal.astype(features.dtype)
    else:
        for start in range(0, len(features), BLOCK_ROWS):
            z = features[start : start + BLOCK_ROWS]
            scores[start : start + BLOCK_ROWS] = np.einsum("ij,ij->i", z @ inverse, z)
    return np.maximum(scores * weights, 0)


def rank_one_step(inverse: np.ndarray, z: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Add w z zᵀ to V: returns the new V⁻¹ and u with score_i ← score_i - w_i (z_iᵀu)².

    Sherman-Morrison: V⁻¹ - w (V⁻¹z)(V⁻¹z)ᵀ / (1 + w zᵀV⁻¹z); u = sqrt(w / (1 + w zᵀV⁻¹z)) V⁻¹z.
    """
    vz = inverse @ z
    scale = w / (1.0 + w * float(z @ vz))
    u = np.sqrt(scale) * vz
    return inverse - np.outer(u, u), u


def greedy_d_optimal(
    features: np.ndarray,
    k: int,
    *,
    weights: np.ndarray | None = None,
    design: Design | None = None,
    lam: float = 1.0,
    shortlist: int = DOptimalParams.shortlist,
    block: int = DOptimalParams.block,
) -> Selection:
    """Pick k rows of `features` (N, d) by exact greedy log-det, reading only the part of the pool that can win.

    `weights` are the σ' weights of the current model (ones before any); `design` holds what is
    already labelled (λI by default). Returns the picks in order, each with its gain
    w z V⁻¹ z at the time it was picked (log-det grows by log(1 + gain)).

    Every candidate keeps a bound: its score after the first `stamp` rank-1 updates, which the
    later ones only lower. A refresh brings the candidates with the highest bounds up to date in
    one GEMM per stamp group (the pool's tail, whose bounds are already too low to win, is never
    read again); the best `shortlist` of them are then updated exactly after every pick. A pick is
    taken when it beats every bound outside the shortlist; otherwise, or after `block` picks, the
    shortlist is rebuilt, from a wider refresh when the last one was not wide enough.
    """
    z_all = check_features(features)
    n, d = z_all.shape
    k = min(int(k), n)
    w_all = check_weights(weights, n).astype(z_all.dtype)
    inverse = (design or Design.prior(d, lam=lam)).inverse.astype(np.float64)
    if inverse.shape != (d, d):
        raise ValueError(f"the design is {inverse.shape[0]}-dimensional, the features {d}")
    bounds = initial_scores(z_all, w_all, inverse.astype(z_all.dtype))
    stamps = np.zeros(n, dtype=np.int64)  # how many of the updates each bound has seen
    updates = np.empty((k, d), dtype=z_all.dtype)  # u of every pick, in order
    done = 0  # picks so far
    alive = np.ones(n, dtype=bool)
    picks, gains = [], []
    m = min(max(shortlist, 1), n)

    def bring_up_to_date(rows: np.ndarray) -> None:
        """Apply the updates each row's bound has not seen: one GEMM per group of rows with the same stamp."""
        rows = rows[stamps[rows] < done]
        for stamp in np.unique(stamps[rows]):
            group = rows[stamps[rows] == stamp]
            u = updates[stamp:done].T
            for start in range(0, len(group), BLOCK_ROWS):
                part = group[start : start + BLOCK_ROWS]
                proj = z_all[part] @ u
                bounds[part] = np.maximum(bounds[part] - w_all[part] * np.einsum("ij,ij->i", proj, proj), 0)
            stamps[group] = done

    def build_shortlist(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
        """Refresh the `width` highest bounds; the m best of them (exact, best first) and the highest bound outside."""
        live = np.flatnonzero(alive)
        width = min(width, len(live))
        if width < len(live):
            top = live[np.argpartition(-bounds[live], width)[: width + 1]]
            top = top[np.argsort(-bounds[top], kind="stable")]
            refreshed, unread = top[:width], float(bounds[top[width]])
        else:
            refreshed, unread = live, -np.inf
        bring_up_to_date(refreshed)
        order = refreshed[np.lexsort((refreshed, -bounds[refreshed]))]  # best first, lower index first on ties
        members = order[:m]
        outside = max(unread, float(bounds[order[m]]) if len(order) > m else -np.inf)
        return members, z_all[members], w_all[members], bounds[members].astype(np.float64), outside, width

    width = 2 * m
    members, z_short, w_short, exact, outside, width = build_shortlist(width)
    since_rebuild = 0
    while len(picks) < k:
        best = int(np.argmax(exact)) if len(exact) else -1
        if best < 0 or exact[best] == -np.inf or exact[best] < outside or since_rebuild >= block:
            # Write the shortlist's exact scores back: they have seen every update.
            live_members = members[exact != -np.inf]
            bounds[live_members] = np.maximum(exact[exact != -np.inf], 0).astype(bounds.dtype)
            stamps[live_members] = done
            # A rebuild right after one that found no valid pick looks wider.
            width = min(n, width * 2) if since_rebuild == 0 else max(2 * m, width)
            members, z_short, w_short, exact, outside, width = build_shortlist(width)
            since_rebuild = 0
            continue
        index = int(members[best])
        picks.append(index)
        gains.append(float(exact[best]))
        alive[index] = False
        inverse, u = rank_one_step(inverse, z_all[index].astype(np.float64), float(w_all[index]))
        updates[done] = u
        done += 1
        proj = (z_short @ u.astype(z_all.dtype)).astype(np.float64)
        exact -= w_short * proj * proj  # picked members stay at -inf
        exact[best] = -np.inf
        since_rebuild += 1
    return Selection(indices=np.asarray(picks, dtype=np.int64), scores=np.asarray(gains))


def eager_greedy_d_optimal(
    features: np.ndarray, k: int, *, weights: np.ndarray | None = None, design: Design | None = None, lam: float = 1.0
) -> Selection:
    """The reference: every score updated after every pick (one pass over the pool per pick)."""
    z_all = check_features(features)
    n, d = z_all.shape
    w_all = check_weights(weights, n).astype(z_all.dtype)
    inverse = (design or Design.prior(d, lam=lam)).inverse.astype(np.float64)
    scores = initial_scores(z_all, w_all, inverse.astype(z_all.dtype)).astype(np.float64)
    picks, gains = [], []
    for _ in range(min(int(k), n)):
        index = int(np.argmax(scores))
        picks.append(index)
        gains.append(float(scores[index]))
        inverse, u = rank_one_step(inverse, z_all[index].astype(np.float64), float(w_all[index]))
        proj = z_all @ u.astype(z_all.dtype)
        scores = np.maximum(scores - w_all * proj * proj, 0)
        scores[picks] = -np.inf
    return Selection(indices=np.asarray(picks, dtype=np.int64), scores=np.asarray(gains))


def lazy_greedy_d_optimal(
    features: np.ndarray, k: int, *, weights: np.ndarray | None = None, design: Design | None = None, lam: float = 1.0
) -> tuple[Selection, int]:
    """Plain lazy greedy (a max-heap of stale gains): the baseline the blocked refresh beats.

    Also returns how many candidates it re-evaluated, the figure that makes it slow on
    low-rank features.
    """
    z_all = check_features(features).astype(np.float64)
    n, d = z_all.shape
    w_all = check_weights(weights, n).astype(np.float64)
    inverse = (design or Design.prior(d, lam=lam)).inverse.astype(np.float64)
    scores = initial_scores(z_all, w_all, inverse)
    heap = [(-float(s), i, 0) for i, s in enumerate(scores)]  # (−gain, index, pick count when computed)
    heapq.heapify(heap)
    picks, gains, evaluations = [], [], 0
    while len(picks) < min(int(k), n):
        negative, index, stamp = heapq.heappop(heap)
        if stamp == len(picks):
            picks.append(index)
            gains.append(-negative)
            inverse, _ = rank_one_step(inverse, z_all[index], float(w_all[index]))
            continue
        z = z_all[index]
        evaluations += 1
        heapq.heappush(heap, (-max(float(w_all[index] * (z @ inverse @ z)), 0.0), index, len(picks)))
    return Selection(indices=np.asarray(picks, dtype=np.int64), scores=np.asarray(gains)), evaluations


def log_det_gain(features: np.ndarray, chosen: Sequence[int], *, weights: np.ndarray | None = None, lam: float = 1.0) -> float:
    """log det(V) - log det(λI) after adding the chosen rows: what greedy maximises."""
    z = check_features(features).astype(np.float64)
    w = check_weights(weights, len(z)).astype(np.float64)
    rows = np.asarray(list(chosen), dtype=np.int64)
    v = lam * np.eye(z.shape[1]) + (z[rows] * w[rows, None]).T @ z[rows]
    return float(np.linalg.slogdet(v)[1] - z.shape[1] * np.log(lam))


def greedy_d_optimal_kwise(
    groups: Sequence[np.ndarray],
    k: int,
    *,
    weights: Sequence[np.ndarray] | None = None,
    design: Design | None = None,
    lam: float = 1.0,
) -> Selection:
    """Greedy log-det over K-wise queries: query q adds Σ_p w_p z_p z_pᵀ over its pair differences.

    `groups[q]` is the (P, d) matrix of query q's pair differences (ALGORITHMS.md §3.1: the
    Plackett-Luce design matrix); its gain is log det(I + W^½ Z V⁻¹ Zᵀ W^½), and V⁻¹ is updated
    with Woodbury. Lazy: gains only shrink, so a stale gain bounds the true one.
    """
    if not len(groups):
        return Selection(indices=np.zeros(0, dtype=np.int64), scores=np.zeros(0))
    mats = [check_features(np.atleast_2d(g)).astype(np.float64) for g in groups]
    d = mats[0].shape[1]
    if any(m.shape[1] != d for m in mats):
        raise ValueError("every query's pair differences must have the same number of dims")
    ws = [check_weights(None if weights is None else weights[q], len(m)) for q, m in enumerate(mats)]
    inverse = (design or Design.prior(d, lam=lam)).inverse.astype(np.float64)

    def gain(q: int) -> float:
        root = np.sqrt(ws[q])[:, None] * mats[q]
        return float(np.linalg.slogdet(np.eye(len(root)) + root @ inverse @ root.T)[1])

    heap = [(-gain(q), q, 0) for q in range(len(mats))]
    heapq.heapify(heap)
    picks, gains = [], []
    while len(picks) < min(int(k), len(mats)):
        negative, q, stamp = heapq.heappop(heap)
        if stamp != len(picks):
            heapq.heappush(heap, (-gain(q), q, len(picks)))
            continue
        picks.append(q)
        gains.append(-negative)
        root = np.sqrt(ws[q])[:, None] * mats[q]  # V + RᵀR; Woodbury: V⁻¹ - V⁻¹Rᵀ(I + R V⁻¹ Rᵀ)⁻¹ R V⁻¹
        vr = inverse @ root.T
        inverse = inverse - vr @ np.linalg.solve(np.eye(len(root)) + root @ vr, vr.T)
    return Selection(indices=np.asarray(picks, dtype=np.int64), scores=np.asarray(gains))


@dataclass(frozen=True)
class OfflineDesign:
    """A Frank-Wolfe design: weights over the pool, the rounded picks, and how it stopped."""

    weights: np.ndarray  # ρ, sums to 1
    selection: Selection
    iterations: int
    max_variance: float  # max_j z_jᵀ V(ρ)⁻¹ z_j at the end; ≤ d (1 + ε) when it converged
    converged: bool


def frank_wolfe_design(
    features: np.ndarray, budget: int, *, epsilon: float = 0.05, max_iterations: int = 10_000, lam: float = 1e-6
) -> OfflineDesign:
    """The offline design of Scheid et al.: Fedorov-Wynn / Frank-Wolfe on ρ, then rounding to `budget` queries.

    Stops by the Kiefer-Wolfowitz rule: max_j z_jᵀ V(ρ)⁻¹ z_j ≤ d (1 + ε), with V(ρ) = Σ ρ_j z_j z_jᵀ
    (plus a tiny λI so a pool that spans fewer than d dims still inverts; d is then its rank).
    Rounding: each query gets ⌊budget ρ_j⌋ and the rest go greedily to the largest remainders;
    a query is asked once, so the picks are the distinct queries with the most weight.
    """
    z = check_features(features).astype(np.float64)
    n, d = z.shape
    rank = int(np.linalg.matrix_rank(z))
    rho = np.full(n, 1.0 / n)
    converged, iterations, worst = False, 0, np.inf
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - the count is reported
        inverse = np.linalg.inv((z * rho[:, None]).T @ z + lam * np.eye(d))
        variance = np.einsum("ij,jk,ik->i", z, inverse, z)
        j = int(np.argmax(variance))
        worst = float(variance[j])
        if worst <= rank * (1 + epsilon):
            converged = True
            break
        # The exact line search for log-det (Fedorov): step = (g/d - 1) / (g - 1).
        step = (worst / rank - 1) / (worst - 1)
        rho *= 1 - step
        rho[j] += step
    counts = np.floor(rho * budget)
    remainder = rho * budget - counts
    order = np.lexsort((np.arange(n), -remainder))
    counts[order[: max(0, budget - int(counts.sum()))]] += 1
    ranked = np.lexsort((np.arange(n), -rho))
    chosen = ranked[counts[ranked] > 0][:budget]
    if len(chosen) < min(budget, n):  # fewer distinct queries than the budget: fill with the next weights
        rest = [i for i in ranked if i not in set(chosen.tolist())]
        chosen = np.concatenate([chosen, np.asarray(rest[: min(budget, n) - len(chosen)], dtype=np.int64)])
    selection = Selection(indices=chosen.astype(np.int64), scores=rho[chosen])
    return OfflineDesign(weights=rho, selection=selection, iterations=iterations, max_variance=worst, converged=converged)
