"""Last-layer features φ(x, y) for query selection, and their cache.

φ is the mean-pooled last hidden state of a backbone over the (prompt, response) encoding the
reward model reads: a study's current reward-model version, or its base model before any version
exists. Features are cached per (response, model) as float16 arrays under one folder per model,
in shards written whole (a temporary file renamed into place), so a lost worker leaves no half
shard and a refresh computes only what is missing. The same job caches each response's reward
under a reward-model version, one column per ensemble member (`RewardCache`, the same format in
float32), so selection reads margins without loading a model. A random projection, when asked for, is
applied after the cache, by `learning.select.common.random_projection`, whose seed is stored
with the round that used it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learning.reward.model import PromptAndResponse

Progress = Callable[[dict], None]
SHARD_PREFIX = "shard-"


def _hidden_states(backbone: Any, batch: dict) -> Any:
    """The last hidden states of an encoder (last_hidden_state) or of a causal LM (its last layer)."""
    output = backbone(**batch, output_hidden_states=True)
    hidden = getattr(output, "last_hidden_state", None)
    return hidden if hidden is not None else output.hidden_states[-1]


def compute_features(
    backbone: Any,
    tokenizer: Any,
    items: Sequence[PromptAndResponse],
    *,
    max_length: int = 256,
    batch_size: int = 32,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(len(items), hidden) float32 features, batched by length; `progress` gets {step, total_steps}."""
    import torch

    from learning.errors import TrainingStopped
    from learning.reward.model import collate, effective_max_length, mean_pool, pick_device, tokenize

    device = pick_device()
    backbone = backbone.to(device).eval()
    length = effective_max_length(tokenizer, backbone, max_length)
    rows = tokenize(tokenizer, items, length)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    features = np.zeros((len(rows), backbone.config.hidden_size), dtype=np.float32)
    batches = range(0, len(order), batch_size)
    with torch.no_grad():
        for step, start in enumerate(batches, start=1):
            if should_stop is not None and should_stop():
                raise TrainingStopped("feature computation was cancelled")
            indices = order[start : start + batch_size]
            batch = collate(tokenizer, [rows[i] for i in indices], device, max_length=length)
            pooled = mean_pool(_hidden_states(backbone, batch), batch["attention_mask"])
            features[indices] = pooled.cpu().numpy()
            if progress is not None:
                progress({"step": step, "total_steps": len(batches)})
    return features


def load_feature_backbone(source: str | os.PathLike, *, expected_checksum: str | None = None) -> tuple[Any, Any]:
    """(tokenizer, backbone) for features: a reward-model artifact's first member, or a base model by name or path.

    An artifact's checksum is verified (`expected_checksum`): features from a changed model would
    silently mislead the selection.
    """
    from learning.artifacts import CHECKSUMS_FILE
    from learning.models import load_causal_lm, load_encoder, resolve_model

    path = Path(source)
    # With a checksum it must be an artifact: a missing one is an error, not a model name.
    if expected_checksum is not None or (path.is_dir() and (path / CHECKSUMS_FILE).is_file()):
        from learning.reward.model import load_reward_members

        return artifact_backbone(load_reward_members(path, expected_checksum=expected_checksum))
    resolved = resolve_model(str(source))
    if resolved.is_gguf:
        model, tokenizer = load_causal_lm(str(source))
        return tokenizer, model
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(resolved.path), local_files_only=True)
    if getattr(config, "is_decoder", False) or "CausalLM" in " ".join(getattr(config, "architectures", None) or []):
        model, tokenizer = load_causal_lm(str(source))
        return tokenizer, model
    return load_encoder(str(source))


def artifact_backbone(loaded: tuple[Any, list, Any]) -> tuple[Any, Any]:
    """(tokenizer, backbone) of a loaded reward-model artifact (`load_reward_members`): its first member's."""
    tokenizer, members, _ = loaded
    return tokenizer, members[0].backbone


def reward_members_once(source: str | os.PathLike, checksum: str | None) -> Callable[[], tuple[Any, list, Any]]:
    """A loader of the reward-model artifact `source` (verified against `checksum`) that loads it on its first call only."""

    @functools.cache
    def load() -> tuple[Any, list, Any]:
        from learning.reward.model import load_reward_members

        return load_reward_members(source, expected_checksum=checksum)

    return load


class FeatureCache:
    """Features of responses under one model, as float16 shards in `folder`.

    The folder is the model's own (e.g. `features/<model key>/`); `meta.json` records the model
    and dims so features of two models are never mixed.
    """

    stored_dtype: Any = np.float16

    def __init__(self, folder: str | os.PathLike, *, model: str, dims: int | None = None):
        self.folder = Path(folder)
        self.model = model
        self.dims = dims
        meta = self.folder / "meta.json"
        if meta.is_file():
            stored = json.loads(meta.read_text(encoding="utf-8"))
            if stored.get("model") != model:
                raise ValueError(f"{self.folder} holds features of {stored.get('model')!r}, not {model!r}")
            self.dims = stored["dims"]

    @staticmethod
    def folder_name(model_key: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", model_key).strip("-.") or "model"

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob(f"{SHARD_PREFIX}*.npz")) if self.folder.is_dir() else []

    def load(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, float32 features with zeros where missing) for the response ids."""
        wanted = {int(i): n for n, i in enumerate(ids)}
        found = np.zeros(len(wanted), dtype=bool)
        features = np.zeros((len(wanted), self.dims or 0), dtype=np.float32)
        for shard in self._shards():
            with np.load(shard) as data:
                rows, places = self._matches(data["ids"], wanted)
                if rows:  # each data[...] reads the whole array from the file: once per shard
                    features[places] = data["features"][rows]
                    found[places] = True
        return found, features

    @staticmethod
    def _matches(shard_ids: np.ndarray, wanted: dict[int, int]) -> tuple[list[int], list[int]]:
        """(rows of the shard, places in the request) of the wanted ids the shard holds."""
        pairs = [(row, wanted[i]) for row, i in enumerate(shard_ids.tolist()) if i in wanted]
        return [row for row, _ in pairs], [place for _, place in pairs]

    def missing(self, ids: Sequence[int]) -> list[int]:
        """The ids the cache lacks; reads only the shards' ids, not their features."""
        wanted = {int(i): n for n, i in enumerate(ids)}
        found = np.zeros(len(wanted), dtype=bool)
        for shard in self._shards():
            with np.load(shard) as data:
                found[self._matches(data["ids"], wanted)[1]] = True
        return [int(i) for i, ok in zip(ids, found, strict=True) if not ok]

    def store(self, ids: Sequence[int], features: np.ndarray) -> Path:
        """Write one shard whole, as `stored_dtype`."""
        features = np.asarray(features)
        if features.ndim != 2 or len(features) != len(ids):
            raise ValueError(f"{len(ids)} ids need a ({len(ids)}, dims) array, not shape {features.shape}")
        if self.dims is not None and features.shape[1] != self.dims:
            raise ValueError(f"these features have {features.shape[1]} dims; the cache holds {self.dims}")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.dims is None:
            self.dims = int(features.shape[1])
            (self.folder / "meta.json").write_text(json.dumps({"model": self.model, "dims": self.dims}), encoding="utf-8")
        name = f"{SHARD_PREFIX}{len(self._shards()):06d}-{uuid.uuid4().hex[:8]}.npz"
        staging = self.folder / f".{name}.tmp.npz"
        np.savez(staging, ids=np.asarray(ids, dtype=np.int64), features=features.astype(self.stored_dtype))
        final = self.folder / name
        os.replace(staging, final)
        return final


class RewardCache(FeatureCache):
    """Rewards of responses under one reward-model version: a row per response, a column per member.

    Stored as float32: uncertainty ranks queries by small reward differences, which float16 would round away.
    """

    stored_dtype = np.float32


# Features are stored a chunk of this many batches at a time, so a lost worker loses one chunk.
CHUNK_BATCHES = 32


def missing_items(cache: FeatureCache, items: Sequence[tuple[int, Sequence[dict], str]]) -> list[tuple[int, Sequence[dict], str]]:
    """The (response id, prompt, response) items whose rows the cache lacks, each id once."""
    wanted = {int(item[0]): item for item in items}
    return [wanted[i] for i in cache.missing(list(wanted))]


def fill_missing(
    cache: FeatureCache,
    missing: Sequence[tuple[int, Sequence[dict], str]],
    *,
    batch_size: int,
    load: Callable[[], Any],
    compute: Callable[[Any, list, Progress], Any],
    progress: Progress | None = None,
) -> int:
    """Compute and store, a chunk of CHUNK_BATCHES batches at a time, the rows of `missing` (`missing_items`).

    `load()` runs only when something is missing and gives the model; `compute(model, part, report)`
    gives the (len(part), columns) rows of a chunk of (response id, prompt, response) items and may
    report its batches. Returns how many were computed; `progress` gets {step, total_steps} in
    batches over them all.
    """
    if not missing:
        return 0
    model = load()
    total_steps = -(-len(missing) // batch_size)
    chunk = batch_size * CHUNK_BATCHES
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        done = start // batch_size

        def report(update: dict, offset: int = done) -> None:
            if progress is not None:
                progress({"step": offset + update["step"], "total_steps": total_steps})

        cache.store([response_id for response_id, _, _ in part], compute(model, part, report))
        report({"step": -(-len(part) // batch_size)})
    return len(missing)


def fill_cache(
    cache: FeatureCache,
    missing: Sequence[tuple[int, Sequence[dict], str]],
    *,
    load: Callable[[], tuple[Any, Any]],
    max_length: int = 256,
    batch_size: int = 32,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Compute and store the features of `missing`, items the cache lacks (`fill_missing`).

    `load()` gives (tokenizer, backbone); it is called only when something is missing.
    """

    def compute(model: tuple[Any, Any], part: list, report: Progress) -> np.ndarray:
        tokenizer, backbone = model
        texts = [(prompt, text) for _, prompt, text in part]
        return compute_features(
            backbone, tokenizer, texts, max_length=max_length, batch_size=batch_size, progress=report, should_stop=should_stop
        )

    return fill_missing(cache, missing, batch_size=batch_size, load=load, compute=compute, progress=progress)


def fill_rewards(
    cache: RewardCache,
    missing: Sequence[tuple[int, Sequence[dict], str]],
    *,
    load: Callable[[], tuple[Any, list, Any]],
    batch_size: int = 32,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Score and store, per ensemble member, the rewards of `missing`, items the cache lacks (`fill_missing`).

    `load()` gives the reward model as `load_reward_members` does; it is called only when something is missing.
    """
    from learning.errors import TrainingStopped
    from learning.reward.score import member_rewards

    def compute(model: tuple[Any, Any, Any], part: list, report: Progress) -> np.ndarray:
        if should_stop is not None and should_stop():
            raise TrainingStopped("reward scoring was cancelled")
        tokenizer, members, artifact = model
        texts = [(list(prompt), text) for _, prompt, text in part]
        return member_rewards(tokenizer, members, artifact, texts, batch_size).T.numpy()

    return fill_missing(cache, missing, batch_size=batch_size, load=load, compute=compute, progress=progress)


def features_job(
    *,
    config: Any,
    items: Sequence[tuple[int, Sequence[dict], str]],
    source: str,
    checksum: str | None,
    cache_dir: str | None,
    model_key: str,
    rewards_dir: str | None = None,
    output_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    eval_groups: Any = None,
) -> dict:
    """The `features` job (learning/jobs.py): fill the model's caches for every item; returns the run's metrics.

    cache_dir: where the features go (None: a round whose strategy reads none). rewards_dir: where
    the rewards under the reward-model version `source` go (None: none wanted, or no version yet).
    `output_dir` and `eval_groups` are every job's; features need neither (the cache is shared
    by every run of the same model).
    """
    features = None if cache_dir is None else FeatureCache(cache_dir, model=model_key)
    rewards = None if rewards_dir is None else RewardCache(rewards_dir, model=model_key)
    # What each cache lacks, read once: it sizes the progress and is what gets computed.
    lacking = [[] if cache is None else missing_items(cache, items) for cache in (features, rewards)]
    # One progress over both: the features' batches, then the rewards'.
    steps = [-(-len(todo) // config.batch_size) for todo in lacking]

    def report(offset: int):
        def update(step: dict) -> None:
            if progress is not None:
                progress({"step": offset + step["step"], "total_steps": sum(steps)})

        return update

    # Under a reward-model version (a checksum) both caches read its artifact: loaded and verified once, if at all.
    members = reward_members_once(source, checksum)

    def backbone() -> tuple[Any, Any]:
        return load_feature_backbone(source) if checksum is None else artifact_backbone(members())

    metrics: dict = {"responses": len(items)}
    if features is not None:
        metrics["computed"] = fill_cache(
            features,
            lacking[0],
            load=backbone,
            max_length=config.max_length,
            batch_size=config.batch_size,
            progress=report(0),
            should_stop=should_stop,
        )
        metrics["dims"] = features.dims or 0
    if rewards is not None:
        metrics["rewards_computed"] = fill_rewards(
            rewards,
            lacking[1],
            load=members,
            batch_size=config.batch_size,
            progress=report(steps[0]),
            should_stop=should_stop,
        )
    return metrics
