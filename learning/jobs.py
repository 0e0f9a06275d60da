"""Every kind of job a worker runs, in one table: its config class, its runner, what it needs.

Adding a kind is one entry here plus its runner. The config classes are torch-free, so the web
process checks a request with them; the runner is named by its import path and imported only
when a worker runs the job. Every kind runs through the one `train_model` task, sent to the
Celery queue its entry names: `gpu` for what loads a model, `default` for light work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from learning.config import ConfigError, config_from_dict
from learning.features_config import FeaturesConfig
from learning.reward.config import RatingTrainConfig, RewardTrainConfig, SpanTrainConfig
from learning.select.job import SelectionConfig


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    runner: "module:function", called as runner(config=<config>, output_dir=..., progress=...,
    should_stop=..., eval_groups=..., **{key: data[key] for key in data_keys}).
    registers_model: its result is a model version for the registry (a TrainResult); otherwise
    the runner returns the run's metrics (a dict).
    queue: the Celery queue its jobs are sent to (annotate/celery.py declares them).
    round_only: it runs only as a step of a round (its data is the round's), never by hand.
    """

    name: str
    label: str
    config: type
    runner: str
    data_keys: tuple[str, ...]
    registers_model: bool = True
    queue: str = "gpu"
    round_only: bool = False


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("reward", "Reward model", RewardTrainConfig, "learning.reward.train:train_reward_model", ("pairs", "rankings")),
        JobKind(
            "span_reward",
            "Span reward model",
            SpanTrainConfig,
            "learning.reward.spans:train_span_model",
            ("examples", "categories"),
        ),
        JobKind(
            "rating_reward",
            "Rating model",
            RatingTrainConfig,
            "learning.reward.ratings:train_rating_model",
            ("examples", "aspects"),
        ),
        JobKind(
            "features",
            "Features",
            FeaturesConfig,
            "learning.features:features_job",
            ("items", "source", "checksum", "cache_dir", "model_key", "rewards_dir"),
            registers_model=False,
        ),
        # Arrays in, picks out: it loads no model (features and rewards come from the cache the
        # round's features job filled on the gpu queue), so it does not wait behind training.
        JobKind(
            "selection",
            "Selection",
            SelectionConfig,
            "learning.select.job:selection_job",
            ("candidates", "groups", "labelled_groups", "margins", "labelled_margins", "left_out"),
            registers_model=False,
            queue="default",
            round_only=True,
        ),
    )
}
# The kinds that train a model from labels: what a manager trains by hand and the dashboard offers.
MODEL_KINDS = tuple(name for name, kind in JOB_KINDS.items() if kind.registers_model)
# The kinds a person may start (the API's and the train command's choices).
HAND_KINDS = tuple(name for name, kind in JOB_KINDS.items() if not kind.round_only)


def job_kind(name: str) -> JobKind:
    if name not in JOB_KINDS:
        raise ConfigError(f"Unknown run kind {name!r}; use one of {', '.join(JOB_KINDS)}.", field="kind")
    return JOB_KINDS[name]


def job_config(name: str, data: dict | None, *, prefix: str = "config") -> Any:
    """The checked config of a job of kind `name`; a ConfigError names the key that is wrong."""
    return config_from_dict(job_kind(name).config, data, prefix=prefix)


def job_runner(name: str) -> Callable[..., Any]:
    """The kind's runner, imported now (it may load torch)."""
    module, _, function = job_kind(name).runner.partition(":")
    return getattr(importlib.import_module(module), function)
