"""Features φ(x, y) of a study's responses for query selection, and the model margins it weighs by.

Features are cached per (response, model) as float16 shards under
`ARTIFACTS_DIR/features/<study>/<model key>/` (learning/features.py), never as rows: the model key
is `v<version id>` for a reward-model version, or the study's base model before any exists. A
`features` run fills the cache for every response of the study; the selection job reads it
through `query_feature_groups`, which computes inline whatever is still missing.
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

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Query, QueryResponse, Response, Study, TrainingRun
from annotate.models.training import RunKind

if TYPE_CHECKING:
    from learning.features import FeatureCache


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


def check_version(study: Study, version: ModelVersion | None) -> None:
    if version is not None and (version.study_id != study.pk or version.kind != RunKind.REWARD):
        raise InvalidInput(f"Model version {version.pk} is not a reward model of this study.", field="model_version")


def response_items(responses) -> list[tuple[int, list[dict], str]]:
    """(response id, chat prompt, text) for each response, as the feature backbone reads them."""
    return [(r.pk, r.prompt.messages, r.text) for r in responses.select_related("prompt").order_by("pk")]


def features_job_data(run: TrainingRun) -> dict:
    """The `features` job's data (learning/jobs.py): every response of the study and where they go."""
    study = run.study
    version_id = run.config.get("model_version")
    version = None
    if version_id is not None:
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise ValueError(f"model version {version_id} no longer exists")
        check_version(study, version)
    model_key, source, checksum = feature_source(study, version)
    return {
        "items": response_items(Response.objects.filter(prompt__study=study)),
        "source": source,
        "checksum": checksum,
        "cache_dir": str(feature_cache(study, model_key).folder),
        "model_key": model_key,
    }


@transaction.atomic
def features_refresh(*, study: Study, version: ModelVersion | None, requested_by: AbstractBaseUser) -> TrainingRun:
    """Start a `features` run for the study's responses under `version` (its base model if None), queued on commit."""
    from annotate.services.training import training_run_start

    check_version(study, version)
    config = {"model_version": None if version is None else version.pk}
    return training_run_start(study=study, requested_by=requested_by, kind=RunKind.FEATURES, config=config)


def query_response_ids(queries: list[Query]) -> list[list[int]]:
    """Each query's response ids in canonical position order, read in one query."""
    by_query: dict[int, list[int]] = defaultdict(list)
    rows = QueryResponse.objects.filter(query__in=[q.pk for q in queries]).order_by("query_id", "position")
    for query_id, response_id in rows.values_list("query_id", "response_id"):
        by_query[query_id].append(response_id)
    return [by_query[q.pk] for q in queries]


def pair_differences(rows: np.ndarray) -> np.ndarray:
    """(P, ...) differences row i − row j over the pairs i < j in canonical order (P = K(K−1)/2)."""
    pairs = list(combinations(range(len(rows)), 2))
    return np.stack([rows[i] - rows[j] for i, j in pairs]) if pairs else np.zeros((0, *rows.shape[1:]), dtype=rows.dtype)


def query_feature_groups(*, study: Study, queries: list[Query], version: ModelVersion | None) -> list[np.ndarray]:
    """Each query's (P, d) float32 pair-difference features (ALGORITHMS.md §3.1), in canonical response order.

    P is 1 for a pair and K(K−1)/2 for a ranking of K. Features missing from the cache are
    computed here first (call it on a worker: it may load the model); the artifact's checksum is
    verified then.
    """
    from learning.config import config_from_dict
    from learning.features import fill_cache
    from learning.features_config import FeaturesConfig

    check_version(study, version)
    model_key, source, checksum = feature_source(study, version)
    cache = feature_cache(study, model_key)
    groups = query_response_ids(queries)
    ids = sorted({response_id for group in groups for response_id in group})
    defaults = config_from_dict(FeaturesConfig, {})
    fill_cache(
        cache,
        response_items(Response.objects.filter(pk__in=ids)),
        source=source,
        checksum=checksum,
        max_length=defaults.max_length,
        batch_size=defaults.batch_size,
    )
    found, features = cache.load(ids)
    if not found.all():
        raise Conflict(f"No features for response {ids[int(np.argmin(found))]} under {model_key}.")
    row = {response_id: n for n, response_id in enumerate(ids)}
    return [pair_differences(features[[row[i] for i in group]]) for group in groups]


def query_margins(*, version: ModelVersion, queries: list[Query]) -> np.ndarray:
    """(members, n) reward differences, first minus second canonical response (a ranking: the mean over its pairs).

    One row per ensemble member (one for a single model); the artifact's checksum is verified.
    """
    from learning.artifacts import ArtifactIntegrityError
    from learning.reward.score import score_responses

    if version.kind != RunKind.REWARD:
        raise InvalidInput(f"Model version {version.pk} is a {version.kind} model; margins need a reward model.")
    groups = query_response_ids(queries)
    ids = sorted({response_id for group in groups for response_id in group})
    items = response_items(Response.objects.filter(pk__in=ids))
    try:
        _, per_item = score_responses(
            version.artifact_path,
            [(prompt, text) for _, prompt, text in items],
            expected_checksum=version.checksum,
            return_members=True,
        )
    except ArtifactIntegrityError as exc:
        raise Conflict(f"Model version {version.pk} cannot be used: {exc}") from None
    rewards = np.asarray(per_item, dtype=np.float64).reshape(len(items), -1)  # (responses, members)
    row = {response_id: n for n, (response_id, _, _) in enumerate(items)}
    margins = np.zeros((rewards.shape[1], len(queries)))
    for n, group in enumerate(groups):
        margins[:, n] = pair_differences(rewards[[row[i] for i in group]]).mean(axis=0)
    return margins
