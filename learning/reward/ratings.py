"""A sequence-level model from aspect ratings: regression of 1..5 scores per aspect.

The counterpart of Fine-Grained RLHF's sequence-level (completeness) reward: one score per
response and aspect, from the same backbone as the reward model (mean-pooled hidden states) with
a linear head of one output per aspect. Ratings are normalised to [0, 1] by (r − 1) / 4 and
learned with mean squared error; an example that rates only some aspects contributes only
those. Scores come back on the 1..5 scale (clipped), or normalised for use as a reward.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch
from torch import nn

from learning.data import Messages, RatingExample, canonical_order
from learning.errors import NotEnoughLabels
from learning.models import resolve_model
from learning.reward.common import (
    LoopSettings,
    StepTracker,
    TrainResult,
    load_module_artifact,
    publish_module,
    run_training_loop,
    set_up_training,
    split_examples,
    steps_per_epoch,
)
from learning.reward.config import RatingTrainConfig
from learning.reward.evaluate import spearman
from learning.reward.model import (
    BackboneWithHead,
    autocast_context,
    collate,
    encode_pairs,
    mean_pool,
    pick_device,
    to_device,
    tokenize,
)

__all__ = ["RatingExample", "RatingModel", "RatingTrainConfig", "score_ratings", "train_rating_model"]

ARCHITECTURE = "mean-pool-multi-regression-v1"


def normalise_rating(rating: float) -> float:
    """1..5 → 0..1."""
    return (rating - 1.0) / 4.0


def denormalise_score(score: float) -> float:
    """0..1 → 1..5, clipped: a regression head may overshoot the scale."""
    return 1.0 + 4.0 * min(max(score, 0.0), 1.0)


class RatingModel(BackboneWithHead):
    """Normalised scores (batch, aspects) = W · mean_t h_t(x, y) + b, in float32; one output per aspect."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any) -> torch.Tensor:
        return self.head_of(mean_pool(self.hidden_states(input_ids, attention_mask, **extra), attention_mask))


def _targets(examples: Sequence[RatingExample], aspects: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised targets, mask of rated aspects), both (examples, aspects)."""
    values = torch.zeros(len(examples), len(aspects))
    mask = torch.zeros(len(examples), len(aspects), dtype=torch.bool)
    for row, example in enumerate(examples):
        for column, aspect in enumerate(aspects):
            if aspect in example.ratings:
                values[row, column] = normalise_rating(example.ratings[aspect])
                mask[row, column] = True
    return values, mask


@torch.no_grad()
def _predict(
    model: RatingModel,
    tokenizer: Any,
    rows: Sequence[dict],
    *,
    batch_size: int,
    device: torch.device,
    max_length: int,
    bf16: bool | None = None,
) -> torch.Tensor:
    """Normalised predictions (items, aspects) in input order, batched by length."""
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    result = torch.zeros(len(rows), model.head.out_features)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        with autocast_context(device, bf16):
            result[indices] = model(**collate(tokenizer, [rows[i] for i in indices], device, max_length=max_length)).float().cpu()
    return result


def train_rating_model(
    examples: Sequence[RatingExample],
    *,
    config: RatingTrainConfig,
    output_dir: str | os.PathLike,
    aspects: Sequence[str] | None = None,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    eval_groups: Collection[str] | None = None,
) -> TrainResult:
    """Train the regression model, report held-out MAE and Spearman per aspect, and save it.

    ``aspects`` defaults to every aspect rated in ``examples`` (sorted). Examples rating none of
    them are skipped. Same contract as ``train_reward_model`` for errors, progress and stopping.
    """
    resolve_model(config.base_model)
    if config.epochs < 1 or config.batch_size < 1 or config.max_length < 8:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, max_length >= 8; got {config.epochs}, {config.batch_size}, {config.max_length}"
        )
    aspects = sorted({aspect for example in examples for aspect in example.ratings}) if aspects is None else list(aspects)
    usable = [example for example in canonical_order(list(examples)) if any(a in example.ratings for a in aspects)]
    needed = max(config.min_examples, 2)
    if not aspects or len(usable) < needed:
        raise NotEnoughLabels(f"rating model training needs at least {needed} rated responses; it has {len(usable)}")
    train_examples, eval_examples = split_examples(usable, examples, config=config, eval_groups=eval_groups, label="rating model")

    started = time.monotonic()
    setup = set_up_training(config)
    accelerator, device, tokenizer, max_length = setup.accelerator, setup.device, setup.tokenizer, setup.max_length
    torch.manual_seed(config.seed)
    model = RatingModel(setup.backbone, len(aspects))

    def encode(subset: Sequence[RatingExample]) -> tuple[list[dict], int]:
        rows, cut = encode_pairs(tokenizer, [(e.prompt, e.response) for e in subset], max_length)
        return rows, sum(cut)

    rows, train_cut = encode(train_examples)
    eval_rows, eval_cut = encode(eval_examples)
    targets, mask = _targets(train_examples, aspects)

    def batch_loss(module: nn.Module, indices: list[int]) -> torch.Tensor:
        predicted = module(**collate(tokenizer, [rows[i] for i in indices], device, max_length=max_length))
        target, rated = to_device(targets[indices], device), to_device(mask[indices], device)
        return ((predicted - target)[rated] ** 2).mean()

    total_steps = steps_per_epoch(len(train_examples), config.batch_size, accelerator.num_processes) * config.epochs
    loop = run_training_loop(
        accelerator,
        model,
        backbone_params=list(model.backbone.parameters()),
        head_params=list(model.head.parameters()),
        lengths=[len(row["input_ids"]) for row in rows],
        settings=LoopSettings(config.epochs, config.batch_size, config.learning_rate, config.head_learning_rate, config.seed),
        loss_fn=batch_loss,
        tracker=StepTracker(total_steps, progress, accelerator.is_main_process),
        should_stop=should_stop,
        label="rating model",
    )

    predicted = _predict(
        model,
        tokenizer,
        eval_rows,
        batch_size=max(config.batch_size * 2, 16),
        device=device,
        max_length=max_length,
        bf16=setup.bf16,
    )
    eval_targets, eval_mask = _targets(eval_examples, aspects)
    mae: dict[str, float | None] = {}
    rank_correlation: dict[str, float | None] = {}
    for column, aspect in enumerate(aspects):
        rated = eval_mask[:, column]
        truth = [denormalise_score(v) for v in eval_targets[rated, column].tolist()]
        guess = [denormalise_score(v) for v in predicted[rated, column].tolist()]
        mae[aspect] = sum(abs(t - g) for t, g in zip(truth, guess, strict=True)) / len(truth) if truth else None
        rank_correlation[aspect] = spearman(guess, truth)
    known = [value for value in mae.values() if value is not None]
    metrics: dict[str, Any] = {
        "heldout_mae": mae,
        "heldout_spearman": rank_correlation,
        "heldout_mean_mae": sum(known) / len(known) if known else None,
        "train_loss": loop.last_epoch_loss,
        "n_train": len(train_examples),
        "n_eval": len(eval_examples),
        "n_truncated": train_cut + eval_cut,  # examples cut to fit max_length (oldest turns go first)
        "steps": loop.steps,
        "seconds": round(time.monotonic() - started, 3),
    }
    return publish_module(
        setup,
        model,
        output_dir,
        kind="rating_model",
        architecture=ARCHITECTURE,
        config=config,
        described={"aspects": aspects},
        examples=examples,
        eval_examples=eval_examples,
        metrics=metrics,
    )


def score_ratings(
    artifact_dir: str | os.PathLike,
    prompts_and_responses: Sequence[tuple[Messages | str, str]],
    batch_size: int = 32,
    *,
    expected_checksum: str | None = None,
    normalised: bool = False,
) -> list[dict[str, float]]:
    """Predicted rating per aspect for each (prompt, response): 1..5, or 0..1 with ``normalised``."""
    tokenizer, model, artifact = load_module_artifact(
        artifact_dir,
        architecture=ARCHITECTURE,
        build=lambda backbone, metadata: RatingModel(backbone, len(metadata["aspects"])),
        expected_checksum=expected_checksum,
    )
    if not prompts_and_responses:
        return []
    aspects: list[str] = artifact.metadata["aspects"]
    device = pick_device()
    model.to(device)
    rows = tokenize(tokenizer, list(prompts_and_responses), int(artifact.metadata["max_length"]))
    assert isinstance(model, RatingModel)
    max_length = int(artifact.metadata["max_length"])
    predicted = _predict(model, tokenizer, rows, batch_size=batch_size, device=device, max_length=max_length).tolist()
    convert = (lambda v: min(max(v, 0.0), 1.0)) if normalised else denormalise_score
    return [{aspect: convert(value) for aspect, value in zip(aspects, row, strict=True)} for row in predicted]
