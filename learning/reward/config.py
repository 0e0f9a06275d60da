"""The reward, span and rating trainers' settings: torch-free, checked once when built.

The web process checks a requested run by building its config here (no torch is loaded), and the
worker trains from the same class, so each key, its type, its default and its range are written
once. Each config is stored verbatim in its artifact's metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from learning.config import check_whole_numbers, require, whole_number

LOSSES = ("bt", "davidson")
RANKING_LOSSES = ("plackett_luce", "split_pairs")
ENSEMBLE_MODES = ("seeds", "bootstrap")
SEGMENTATIONS = ("sentence", "subsentence")
# The upper bounds are far past any sensible run; beyond them a worker would only fail or never end.
MOST_EXAMPLES = 10_000_000


def check_common(config: Any) -> None:
    """The ranges every trainer shares: whole numbers, learning rates and the evaluation fraction."""
    check_whole_numbers(config)
    for name in ("learning_rate", "head_learning_rate"):
        value = getattr(config, name)
        require(math.isfinite(value) and value > 0, name, "a number above 0", value)
    value = config.eval_fraction
    require(0 <= value < 1, "eval_fraction", "a number from 0 up to (not including) 1", value)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    require(value in choices, name, f"one of {', '.join(choices)}", value)


@dataclass(frozen=True)
class RewardTrainConfig:
    """Reward-model training settings (Bradley-Terry, Davidson ties, Plackett-Luce rankings, ensembles)."""

    base_model: str = "minilm"
    epochs: int = whole_number(2, 1, 1000)
    batch_size: int = whole_number(8, 1, 4096)  # comparisons (pairs or whole rankings) per step
    learning_rate: float = 1e-4  # backbone; chosen by bench/reward_sweep.py (bench/README.md)
    head_learning_rate: float = 1e-3  # freshly initialised linear head (and Davidson's ν)
    max_length: int = whole_number(256, 8, 131_072)  # tokens
    eval_fraction: float = 0.2
    seed: int = whole_number(0, 0, 2**32 - 1)  # what every random generator in the stack accepts
    min_pairs: int = whole_number(8, 0, MOST_EXAMPLES)  # fewest usable comparisons (pairs + rankings) to train on
    # "bt": Bradley–Terry, ties dropped and counted; "davidson": ties are data, ν is learned.
    loss: str = "bt"
    # Llama 2's margin from the annotators' strength (−log σ(Δ − m)); off unless asked for, and
    # when on, the held-out log-likelihood and calibration use the same margin.
    strength_margin: bool = False
    # Rankings: the full Plackett–Luce likelihood, or split into their non-tied pairs.
    ranking_loss: str = "plackett_luce"
    ensemble_size: int = whole_number(1, 1, 64)
    # "seeds": members differ by head initialisation and data order; "bootstrap": each member
    # also trains on a resample (with replacement) of the training prompts.
    ensemble_mode: str = "seeds"
    lora: bool = False  # LoRA adapters on every linear layer of the backbone, merged when saved
    lora_r: int = whole_number(8, 1, 4096)
    lora_alpha: int = whole_number(16, 1, 65_536)
    lora_learning_rate: float = 2e-4  # replaces learning_rate for the backbone when lora is on
    bf16: bool | None = None  # None: bf16 autocast where CUDA supports it

    def __post_init__(self) -> None:
        check_common(self)
        check_choice("loss", self.loss, LOSSES)
        check_choice("ranking_loss", self.ranking_loss, RANKING_LOSSES)
        check_choice("ensemble_mode", self.ensemble_mode, ENSEMBLE_MODES)
        value = self.lora_learning_rate
        require(math.isfinite(value) and value > 0, "lora_learning_rate", "a number above 0", value)


@dataclass(frozen=True)
class ExampleTrainConfig:
    """What the per-response trainers (spans, ratings) share: one labelled example per response."""

    base_model: str = "minilm"
    epochs: int = whole_number(3, 1, 1000)
    batch_size: int = whole_number(8, 1, 4096)
    learning_rate: float = 2e-5
    head_learning_rate: float = 1e-3
    max_length: int = whole_number(256, 8, 131_072)
    eval_fraction: float = 0.2
    seed: int = whole_number(0, 0, 2**32 - 1)
    min_examples: int = whole_number(8, 0, MOST_EXAMPLES)
    bf16: bool | None = None

    def __post_init__(self) -> None:
        check_common(self)


@dataclass(frozen=True)
class SpanTrainConfig(ExampleTrainConfig):
    """Span-model (FG-RLHF segment classifier) training settings."""

    max_length: int = whole_number(512, 8, 131_072)
    segmentation: str = "sentence"
    min_subsentence_words: int = whole_number(5, 1, 1000)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("segmentation", self.segmentation, SEGMENTATIONS)


@dataclass(frozen=True)
class RatingTrainConfig(ExampleTrainConfig):
    """Rating-model (regression on aspect ratings) training settings."""
