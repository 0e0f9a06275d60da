"""Features φ(x, y) of a study's responses for query selection, and the model margins it weighs by.

Features are cached per (response, model) as float16 shards under
`ARTIFACTS_DIR/features/<study>/<model key>/` (learning/features.py), never as rows: the model key
is `v<version id>` for a reward-model version, or the study's base model before any exists. Under
a version, each response's rewards (one per ensemble member) are cached beside them, in
`rewards/`. A `features` run (gpu queue) fills both caches for every response of the study; the
selection job (default queue) only reads them, through `query_feature_groups` and
`query_margins`, and loads no model: what is not cached (a response imported since) is reported
missing, never computed there.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import ModelVersion, Query, QueryResponse, Response, Study, TrainingRun
from annotate.models.training import RunKind

if TYPE_CHECKING:
    from learning.features import FeatureCache, RewardCache


def feature_source(study: Study, version: ModelVersion | None) -> tuple[str, str, str | None]:
    """(model key, what to load: an artifact folder or a base model, the artifact's checksum or None)."""
    if version is None:
        return study.reward_model, study.reward_model, None
    return f"v{version.pk}", version.artifact_path, version.checksum


def features_dir(study: Study) -> Path:
    """The study's feature caches, one folder per model key."""
    return Path(settings.ARTIFACTS_DIR) / "features" / str(study.pk)


def feature_cache(study: Study, model_key: str) -> FeatureCache:
    from learning.features import FeatureCache

    folder = features_dir(study) / FeatureCache.folder_name(model_key)
    return FeatureCache(folder, model=model_key)


def reward_cache(study: Study, model_key: str) -> RewardCache:
    """The rewards of the study's responses under a reward-model version (its model key `v<id>`), beside its features."""
    from learning.features import RewardCache

    return RewardCache(feature_cache(study, model_key).folder / "rewards", model=model_key)


def check_version(study: Study, version: ModelVersion | None) -> None:
    if version is not None and (version.study_id != study.pk or version.kind != RunKind.REWARD):
        raise InvalidInput(f"Model version {version.pk} is not a reward model of this study.", field="model_version")


def response_items(responses) -> list[tuple[int, list[dict], str]]:
    """(response id, chat prompt, text) for each response, as the feature backbone reads them."""
    return [(r.pk, r.prompt.messages, r.text) for r in responses.select_related("prompt").order_by("pk")]


def strategy_reads(strategy: str | None, *, has_version: bool) -> tuple[bool, bool]:
    """(features, rewards): what a round under `strategy` reads from the caches, so what its features
    step fills (the one rule for both); None, a features run started by hand, fills both. Rewards
    exist only under a reward-model version."""
    from learning.select import READS_FEATURES, READS_MARGINS

    if strategy is None:
        return True, has_version
    return strategy in READS_FEATURES, has_version and strategy in READS_MARGINS


def features_job_data(run: TrainingRun) -> dict:
    """The `features` job's data (learning/jobs.py): every response of the study and where they go.

    A round's run caches what its strategy reads (features, and rewards under a version); a run
    started by hand caches both.
    """
    study = run.study
    strategy = run.round.strategy if run.round_id is not None else None
    version_id = run.config.get("model_version")
    version = None
    if version_id is not None:
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise ValueError(f"model version {version_id} no longer exists")
        check_version(study, version)
    model_key, source, checksum = feature_source(study, version)
    wants_features, wants_rewards = strategy_reads(strategy, has_version=version is not None)
    return {
        "items": response_items(Response.objects.filter(prompt__study=study)),
        "source": source,
        "checksum": checksum,
        "cache_dir": str(feature_cache(study, model_key).folder) if wants_features else None,
        "model_key": model_key,
        "rewards_dir": str(reward_cache(study, model_key).folder) if wants_rewards else None,
    }


@transaction.atomic
def features_refresh(*, study: Study, version: ModelVersion | None, requested_by: AbstractBaseUser) -> TrainingRun:
    """Start a `features` run for the study's responses under `version` (its base model if None), queued on commit."""
    from annotate.services.training import training_run_start

    check_version(study, version)
    config = {"model_version": None if version is None else version.pk}
    return training_run_start(study=study, requested_by=requested_by, kind=RunKind.FEATURES, config=config)


# Query ids per statement: a pool of any size stays under PostgreSQL's 65,535 parameters.
IDS_PER_READ = 10_000


def query_response_ids(queries: list[Query]) -> list[list[int]]:
    """Each query's response ids in canonical position order, read a statement per IDS_PER_READ queries."""
    by_query: dict[int, list[int]] = defaultdict(list)
    ids = [q.pk for q in queries]
    for start in range(0, len(ids), IDS_PER_READ):
        rows = QueryResponse.objects.filter(query__in=ids[start : start + IDS_PER_READ]).order_by("query_id", "position")
        for query_id, response_id in rows.values_list("query_id", "response_id"):
            by_query[query_id].append(response_id)
    return [by_query[q.pk] for q in queries]


def pair_differences(rows: np.ndarray) -> np.ndarray:
    """(P, ...) differences row i − row j over the pairs i < j in canonical order (P = K(K−1)/2)."""
    pairs = list(combinations(range(len(rows)), 2))
    return np.stack([rows[i] - rows[j] for i, j in pairs]) if pairs else np.zeros((0, *rows.shape[1:]), dtype=rows.dtype)


def query_feature_groups(
    *, study: Study, queries: list[Query], version: ModelVersion | None, response_ids: list[list[int]] | None = None
) -> list[np.ndarray | None]:
    """Each query's (P, d) float32 pair-difference features (ALGORITHMS.md §3.1), in canonical response order.

    P is 1 for a pair and K(K−1)/2 for a ranking of K. Read from the cache the features job
    filled; None for a query with a response not cached (imported since): nothing is computed here.
    `response_ids`: the queries' `query_response_ids`, where the caller has read them already.
    """
    check_version(study, version)
    model_key, _, _ = feature_source(study, version)
    groups = query_response_ids(queries) if response_ids is None else response_ids
    ids = sorted({response_id for group in groups for response_id in group})
    found, features = feature_cache(study, model_key).load(ids)
    row = {response_id: n for n, response_id in enumerate(ids)}
    return [
        pair_differences(features[[row[i] for i in group]]) if all(found[row[i]] for i in group) else None for group in groups
    ]


def query_margins(*, version: ModelVersion, queries: list[Query], response_ids: list[list[int]] | None = None) -> np.ndarray:
    """(members, n) reward differences, first minus second canonical response (a ranking: the mean over its pairs).

    One row per ensemble member (one for a single model). Read from the rewards the features job
    cached under the version; NaN for a query with a response not cached: no model is loaded here.
    `response_ids` as for `query_feature_groups`.
    """
    if version.kind != RunKind.REWARD:
        raise InvalidInput(f"Model version {version.pk} is a {version.kind} model; margins need a reward model.")
    groups = query_response_ids(queries) if response_ids is None else response_ids
    ids = sorted({response_id for group in groups for response_id in group})
    model_key, _, _ = feature_source(version.study, version)
    found, rewards = reward_cache(version.study, model_key).load(ids)  # (responses, members)
    rewards = rewards.astype(np.float64)
    rewards[~found] = np.nan
    row = {response_id: n for n, response_id in enumerate(ids)}
    margins = np.full((max(rewards.shape[1], 1), len(queries)), np.nan)
    for n, group in enumerate(groups):
        if rewards.shape[1]:
            margins[:, n] = pair_differences(rewards[[row[i] for i in group]]).mean(axis=0)
    return margins
