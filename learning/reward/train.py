"""Train a scalar reward model on preference pairs with the Bradley–Terry (+ margin) loss."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from learning.data import PreferencePair, canonical_order, data_hash, split_by_group
from learning.errors import TrainingStopped
from learning.models import load_encoder, resolve_model
from learning.reward.losses import bradley_terry_loss
from learning.reward.model import (
    RewardModel,
    autocast_context,
    collate,
    compute_rewards,
    disable_dropout,
    effective_max_length,
    pick_device,
    save_reward_model,
    tokenize,
)

__all__ = [
    "NotEnoughLabels",
    "RewardTrainConfig",
    "RewardTrainResult",
    "TrainingStopped",
    "train_reward_model",
]

# Length-sorted batching sorts within windows of this many batches, so batches have little
# padding but their composition still changes from epoch to epoch.
_SORT_WINDOW_BATCHES = 50
_WARMUP_FRACTION = 0.1


class NotEnoughLabels(ValueError):
    """Too few preference pairs to train on; the message gives both counts."""


@dataclass
class RewardTrainConfig:
    """Reward-model training settings; stored verbatim in the artifact's metadata."""

    base_model: str = "minilm"
    epochs: int = 2
    batch_size: int = 8
    learning_rate: float = 2e-5  # backbone
    head_learning_rate: float = 1e-3  # freshly initialised linear head
    max_length: int = 256
    eval_fraction: float = 0.2
    seed: int = 0
    min_pairs: int = 8


@dataclass
class RewardTrainResult:
    """``files`` are paths relative to ``artifact_dir``; ``checksum`` is the artifact's overall one."""

    metrics: dict
    files: list[str]
    data_hash: str
    checksum: str = ""
    artifact_dir: str = ""


def _validate(config: RewardTrainConfig) -> None:
    if config.epochs < 1 or config.batch_size < 1 or config.max_length < 8:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, max_length >= 8; got {config.epochs}, {config.batch_size}, {config.max_length}"
        )
    if not 0.0 <= config.eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {config.eval_fraction}")


def _epoch_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffle, sort by length within windows, cut into batches, shuffle the batches."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * _SORT_WINDOW_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def _pair_metrics(chosen: Sequence[float], rejected: Sequence[float]) -> tuple[float | None, float | None]:
    """Pairwise accuracy (ties count half) and mean BT log-likelihood of the observed choices."""
    if not chosen:
        return None, None
    difference = torch.tensor(chosen, dtype=torch.float64) - torch.tensor(rejected, dtype=torch.float64)
    accuracy = ((difference > 0).double() + 0.5 * (difference == 0).double()).mean().item()
    log_likelihood = F.logsigmoid(difference).mean().item()
    return accuracy, log_likelihood


def _schedule(total_steps: int) -> Callable[[int], float]:
    warmup = int(_WARMUP_FRACTION * total_steps)

    def factor(step: int) -> float:
        # Linear warm-up then linear decay; never exactly zero, so no step is wasted.
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def train_reward_model(
    pairs: list[PreferencePair],
    *,
    config: RewardTrainConfig,
    output_dir: str | os.PathLike,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RewardTrainResult:
    """Train a BT reward model, evaluate it on held-out prompts, and save it to ``output_dir``.

    ``output_dir`` belongs to the artifact: it is created (or replaced) atomically.
    ``progress`` receives ``{"step", "total_steps", "epoch", "loss", "eta_seconds"}`` every few
    steps; ``should_stop`` is polled before each step and raises ``TrainingStopped`` when true.
    Raises ``ModelNotFoundError`` or ``NotEnoughLabels`` before any heavy work. Deterministic
    for a given seed and set of pairs (in any order) on the same device.
    """
    resolve_model(config.base_model)
    needed = max(config.min_pairs, 2)
    if len(pairs) < needed:
        raise NotEnoughLabels(f"reward model training needs at least {needed} preference pairs; it has {len(pairs)}")
    _validate(config)
    # Canonical order: the same set of pairs trains the same model whatever order the caller's
    # query returned them in.
    train_pairs, eval_pairs = split_by_group(canonical_order(pairs), eval_fraction=config.eval_fraction, seed=config.seed)

    torch.manual_seed(config.seed)
    device = pick_device()
    tokenizer, backbone = load_encoder(config.base_model)
    disable_dropout(backbone)
    model = RewardModel(backbone).to(device)
    model.train()
    max_length = effective_max_length(tokenizer, backbone, config.max_length)

    chosen_rows = tokenize(tokenizer, [(p.prompt, p.chosen) for p in train_pairs], max_length)
    rejected_rows = tokenize(tokenizer, [(p.prompt, p.rejected) for p in train_pairs], max_length)
    margins = torch.tensor([p.margin for p in train_pairs], dtype=torch.float32)
    lengths = [max(len(c["input_ids"]), len(r["input_ids"])) for c, r in zip(chosen_rows, rejected_rows, strict=True)]

    steps_per_epoch = math.ceil(len(train_pairs) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        [
            {"params": list(model.backbone.parameters()), "lr": config.learning_rate},
            {"params": list(model.head.parameters()), "lr": config.head_learning_rate},
        ],
        weight_decay=0.0,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total_steps))
    generator = torch.Generator().manual_seed(config.seed)
    report_every = max(1, total_steps // 50)

    step = 0
    started = time.monotonic()
    recent_losses: list[float] = []
    epoch_losses: list[float] = []
    for epoch in range(config.epochs):
        epoch_losses = []
        for batch_indices in _epoch_batches(lengths, config.batch_size, generator):
            if should_stop is not None and should_stop():
                raise TrainingStopped(f"reward model training stopped at step {step} of {total_steps}")
            # One forward pass over chosen and rejected together: same padding, half the calls.
            batch = collate(
                tokenizer,
                [chosen_rows[i] for i in batch_indices] + [rejected_rows[i] for i in batch_indices],
                device,
            )
            with autocast_context(device):
                rewards = model(**batch)
            r_chosen, r_rejected = rewards.split(len(batch_indices))
            loss = bradley_terry_loss(r_chosen, r_rejected, margins[batch_indices].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()

            step += 1
            recent_losses.append(loss.item())
            epoch_losses.append(loss.item())
            if progress is not None and (step % report_every == 0 or step == total_steps):
                elapsed = time.monotonic() - started
                progress(
                    {
                        "step": step,
                        "total_steps": total_steps,
                        "epoch": epoch + 1,
                        "loss": sum(recent_losses) / len(recent_losses),
                        "eta_seconds": elapsed / step * (total_steps - step),
                    }
                )
                recent_losses = []

    eval_batch = max(config.batch_size * 2, 16)

    def rewards_for(subset: Sequence[PreferencePair]) -> tuple[list[float], list[float]]:
        chosen = tokenize(tokenizer, [(p.prompt, p.chosen) for p in subset], max_length)
        rejected = tokenize(tokenizer, [(p.prompt, p.rejected) for p in subset], max_length)
        return (
            compute_rewards(model, tokenizer, chosen, batch_size=eval_batch, device=device),
            compute_rewards(model, tokenizer, rejected, batch_size=eval_batch, device=device),
        )

    heldout_accuracy, heldout_log_likelihood = _pair_metrics(*rewards_for(eval_pairs))
    train_accuracy, _ = _pair_metrics(*rewards_for(train_pairs))
    metrics = {
        "heldout_accuracy": heldout_accuracy,
        "heldout_log_likelihood": heldout_log_likelihood,
        "train_loss": sum(epoch_losses) / len(epoch_losses),
        "train_accuracy": train_accuracy,
        "n_train": len(train_pairs),
        "n_eval": len(eval_pairs),
        "steps": total_steps,
        "seconds": round(time.monotonic() - started, 3),
    }

    hashed = data_hash(pairs)
    metadata = {
        "base_model": config.base_model,
        "config": asdict(config),
        "seed": config.seed,
        "data_hash": hashed,
        "eval_data_hash": data_hash(eval_pairs),
        # Wall-clock time would make identical runs differ; keep it out of the artifact.
        "metrics": {key: value for key, value in metrics.items() if key != "seconds"},
    }
    checksum = save_reward_model(model.cpu(), tokenizer, output_dir, max_length=max_length, metadata=metadata, overwrite=True)
    artifact_dir = Path(output_dir).resolve()
    files = sorted(p.relative_to(artifact_dir).as_posix() for p in artifact_dir.rglob("*") if p.is_file())
    return RewardTrainResult(metrics=metrics, files=files, data_hash=hashed, checksum=checksum, artifact_dir=str(artifact_dir))
