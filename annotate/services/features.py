"""Query features and model margins for selection.

MINIMAL STAND-IN (rounds branch): the features job (issue 12 item 1) replaces this module with
its cached, batched version under the same names and signatures. This one computes what it is
asked for each time, with no cache; enough for the round loop and its tests.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from annotate.models import ModelVersion, Query, Study


def pair_differences(features: np.ndarray) -> np.ndarray:
    """(K(K-1)/2, d) differences φ_i - φ_j of a query's K response features, i < j (ALGORITHMS.md §3.1)."""
    if len(features) < 2:
        raise ValueError("a query of one response has no pair to compare: D-optimal selection needs pairs or rankings")
    return np.stack([features[i] - features[j] for i, j in combinations(range(len(features)), 2)])


def query_feature_groups(*, study: Study, queries: list[Query], version: ModelVersion | None) -> list[np.ndarray]:
    """Each query's (P, d) pair-difference matrix in canonical response order (P = 1 for a pair).

    φ comes from the version's backbone (its checksum verified), or the study's reward base model
    before any version exists.
    """
    from learning.features import compute_features, load_feature_backbone

    source = version.artifact_path if version is not None else study.reward_model
    tokenizer, backbone = load_feature_backbone(source, expected_checksum=version.checksum if version else None)
    responses = [[(r.pk, r) for r in query.ordered_responses()] for query in queries]
    unique = {pk: response for group in responses for pk, response in group}
    prompts = {query.prompt_id: query.prompt.messages for query in queries}
    ids = list(unique)
    items = [(prompts[unique[pk].prompt_id], unique[pk].text) for pk in ids]
    computed = compute_features(backbone, tokenizer, items) if items else np.zeros((0, 1), dtype=np.float32)
    row = {pk: n for n, pk in enumerate(ids)}
    return [pair_differences(computed[[row[pk] for pk, _ in group]]) for group in responses]


def query_margins(*, version: ModelVersion, queries: list[Query]) -> np.ndarray:
    """(members, n) reward differences of each query's canonical first minus second response
    (for K-wise queries the mean over its pairs), from each member of the version's ensemble."""
    from learning.reward.score import score_responses

    groups = [query.ordered_responses() for query in queries]
    items = [(query.prompt.messages, r.text) for query, group in zip(queries, groups, strict=True) for r in group]
    _, per_item = score_responses(version.artifact_path, items, expected_checksum=version.checksum, return_members=True)
    rewards = np.asarray(per_item, dtype=np.float64).T  # (members, items)
    margins, start = np.zeros((rewards.shape[0], len(queries))), 0
    for n, group in enumerate(groups):
        block = rewards[:, start : start + len(group)]
        pairs = list(combinations(range(len(group)), 2))
        margins[:, n] = np.mean([block[:, i] - block[:, j] for i, j in pairs], axis=0)
        start += len(group)
    return margins
