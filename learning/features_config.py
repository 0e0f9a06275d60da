"""The features job's settings: torch-free, so the web process checks a request with them."""

from __future__ import annotations

from dataclasses import dataclass

from learning.config import check_whole_numbers, require, whole_number


@dataclass(frozen=True)
class FeaturesConfig:
    """φ(x, y) of a study's responses under one model (ALGORITHMS.md §3.1), cached whole.

    model_version: the reward-model version whose backbone reads the responses (its id); null
    means the study's base model, used before any version exists. A random projection is the
    selection strategy's (its `projection_dims` and `seed`), applied when the features are read,
    so one cache serves every projection.
    """

    model_version: int | None = None
    batch_size: int = whole_number(32, 1, 4096)
    max_length: int = whole_number(256, 8, 131_072)  # tokens

    def __post_init__(self) -> None:
        check_whole_numbers(self)
        version = self.model_version
        require(version is None or version >= 1, "model_version", "null or a model version's id", version)
