"""The training loop shared by the reward, span and rating trainers.

One loop, so every trainer gets the same behaviour: ``accelerate`` for device placement, bf16
and multi-GPU DDP (under ``accelerate launch``; a plain call is one process), length-bucketed
batches, AdamW with separate learning rates for the pretrained backbone and the fresh head,
linear warm-up and decay, gradient clipping, cooperative cancelling and progress reports.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from learning.artifacts import Artifact, load_artifact, save_artifact
from learning.data import data_hash, held_out_keys, partition_by_group
from learning.errors import NotEnoughLabels, TrainingStopped
from learning.models import load_encoder
from learning.reward.config import ExampleTrainConfig, RewardTrainConfig
from learning.reward.model import BACKBONE_DIR, disable_dropout, effective_max_length, resolve_bf16

# Length-sorted batching sorts within windows of this many batches, so batches have little
# padding but their composition still changes from epoch to epoch.
SORT_WINDOW_BATCHES = 50
WARMUP_FRACTION = 0.1

Progress = Callable[[dict], None]
StopCheck = Callable[[], bool]


def make_accelerator(bf16: bool | None) -> Any:
    """An ``accelerate.Accelerator`` with bf16 mixed precision when ``resolve_bf16(bf16)``.

    Accelerate keeps its state in a process-wide singleton that refuses a second, different
    mixed-precision setting. A long-lived single-process worker (Celery) trains run after run
    with different settings, so there the singleton is reset first; under ``accelerate launch``
    (several processes) the launcher owns the state and it is left alone.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState, PartialState

    mixed_precision = "bf16" if resolve_bf16(bf16) else "no"
    process_state = PartialState._shared_state  # empty until the first Accelerator of the process
    if process_state.get("num_processes", 1) == 1:
        AcceleratorState._reset_state()
    # Backbones compute outputs (e.g. BERT's pooler) that the losses never use; DDP must be
    # told, or it waits forever for their gradients.
    return Accelerator(
        mixed_precision=mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


@dataclass
class TrainingSetup:
    """What every trainer builds its model on: the accelerator and the backbone it starts from."""

    accelerator: Any
    device: torch.device
    bf16: bool  # resolve_bf16(config.bf16): what evaluation's autocast uses
    tokenizer: Any
    backbone: nn.Module  # with dropout off
    max_length: int  # config.max_length clamped to what the backbone and tokenizer allow


def set_up_training(config: RewardTrainConfig | ExampleTrainConfig) -> TrainingSetup:
    """Make the accelerator and load the backbone, the same way for every trainer (the heavy part)."""
    accelerator = make_accelerator(config.bf16)
    tokenizer, backbone = load_encoder(config.base_model)
    disable_dropout(backbone)
    return TrainingSetup(
        accelerator=accelerator,
        device=accelerator.device,
        bf16=resolve_bf16(config.bf16),
        tokenizer=tokenizer,
        backbone=backbone,
        max_length=effective_max_length(tokenizer, backbone, config.max_length),
    )


def split_examples(
    usable: Sequence[Any],
    examples: Sequence[Any],
    *,
    config: ExampleTrainConfig,
    eval_groups: Collection[str] | None,
    label: str,
) -> tuple[list[Any], list[Any]]:
    """(train, eval) of the ``usable`` examples, held out by group as ``held_out_keys`` picks from all ``examples``.

    Raises ``NotEnoughLabels`` naming ``label`` when nothing is left to train on.
    """
    held_out = held_out_keys(examples, eval_fraction=config.eval_fraction, seed=config.seed, eval_groups=eval_groups)
    train_examples, eval_examples = partition_by_group(usable, held_out)
    if not train_examples:
        raise NotEnoughLabels(f"{label} training has no labels outside the evaluation split ({len(eval_examples)} are in it)")
    return train_examples, eval_examples


def epoch_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Length bucketing: shuffle, sort by length within windows, cut into batches, shuffle the batches."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * SORT_WINDOW_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def steps_per_epoch(n_items: int, batch_size: int, num_processes: int) -> int:
    """Optimizer steps per epoch in each process (every process must take the same number)."""
    return max(math.ceil(n_items / batch_size) // num_processes, 1)


def shard_batches(batches: list[list[int]], num_processes: int, process_index: int) -> list[list[int]]:
    """This process's share of an epoch's batches: every ``num_processes``-th one.

    DDP needs the same number of steps in every process, so the last few batches that do not
    divide evenly are left out of this epoch (the next epoch shuffles differently).
    """
    if num_processes == 1:
        return batches
    per_process = steps_per_epoch(sum(len(b) for b in batches), max(len(b) for b in batches), num_processes)
    while len(batches) < per_process * num_processes:  # fewer batches than processes: repeat
        batches = batches + batches
    return batches[process_index : per_process * num_processes : num_processes]


def schedule(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up over the first 10% of steps, then linear decay."""
    warmup = int(WARMUP_FRACTION * total_steps)

    def factor(step: int) -> float:
        # Never exactly zero during warm-up, so no step is wasted.
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


class StepTracker:
    """Counts steps across a whole run (all ensemble members) and reports progress.

    Reports ``{"step", "total_steps", "epoch", "loss", "eta_seconds"}`` (plus ``member`` for
    ensembles) about 50 times per run, only from the main process. Losses are kept as tensors and
    read (a GPU sync) only when a report is due.
    """

    def __init__(self, total_steps: int, progress: Progress | None, is_main: bool) -> None:
        self.total_steps = total_steps
        self.progress = progress if is_main else None
        self.step = 0
        self.started = time.monotonic()
        self.report_every = max(1, total_steps // 50)
        self.recent: list[torch.Tensor] = []

    def advance(self, loss: torch.Tensor, epoch: int, **extra: Any) -> None:
        self.step += 1
        if self.progress is None:
            return
        self.recent.append(loss)
        if not (self.step % self.report_every == 0 or self.step == self.total_steps):
            return
        elapsed = time.monotonic() - self.started
        self.progress(
            {
                "step": self.step,
                "total_steps": self.total_steps,
                "epoch": epoch,
                "loss": torch.stack(self.recent).float().mean().item(),
                "eta_seconds": elapsed / self.step * (self.total_steps - self.step),
                **extra,
            }
        )
        self.recent = []


@dataclass
class LoopSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    head_learning_rate: float
    seed: int


@dataclass
class LoopResult:
    last_epoch_loss: float
    steps: int
    seconds: float


def _stop_requested(should_stop: StopCheck | None, accelerator: Any) -> bool:
    stop = bool(should_stop is not None and should_stop())
    if accelerator.num_processes > 1:
        # Every process must stop at the same step, or the others wait forever in all-reduce.
        flag = torch.tensor([1.0 if stop else 0.0], device=accelerator.device)
        stop = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
    return stop


def run_training_loop(
    accelerator: Any,
    module: nn.Module,
    *,
    backbone_params: list[nn.Parameter],
    head_params: list[nn.Parameter],
    lengths: Sequence[int],
    settings: LoopSettings,
    loss_fn: Callable[[nn.Module, list[int]], torch.Tensor],
    tracker: StepTracker,
    should_stop: StopCheck | None,
    label: str,
    report_extra: dict | None = None,
) -> LoopResult:
    """Train ``module`` in place; ``loss_fn(prepared_module, item_indices)`` gives a batch's loss.

    ``lengths`` (one per training item, in tokens) drive length bucketing. Raises
    ``TrainingStopped`` as soon as ``should_stop()`` is true, naming ``label`` and the step.
    Frees accelerate's references to the module afterwards, so ensembles can train one member
    after another in the same process.
    """
    groups = [{"params": [p for p in backbone_params if p.requires_grad], "lr": settings.learning_rate}]
    groups.append({"params": [p for p in head_params if p.requires_grad], "lr": settings.head_learning_rate})
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.0)
    per_epoch = steps_per_epoch(len(lengths), settings.batch_size, accelerator.num_processes)
    total = per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(total))
    # The scheduler is stepped by hand, once per optimizer step, rather than prepared: accelerate
    # would step it once per process.
    prepared, optimizer = accelerator.prepare(module, optimizer)
    prepared.train()
    trainable = [p for p in prepared.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.monotonic()
    epoch_losses: list[torch.Tensor] = []
    steps = 0
    try:
        for epoch in range(settings.epochs):
            epoch_losses = []
            batches = shard_batches(
                epoch_batches(lengths, settings.batch_size, generator), accelerator.num_processes, accelerator.process_index
            )
            for batch_indices in batches:
                if _stop_requested(should_stop, accelerator):
                    raise TrainingStopped(f"{label} training stopped at step {tracker.step} of {tracker.total_steps}")
                with accelerator.autocast():
                    loss = loss_fn(prepared, batch_indices)
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(trainable, max_norm=1.0)
                optimizer.step()
                scheduler.step()
                steps += 1
                value = loss.detach()  # no .item() here: reading it would make the host wait for the GPU
                epoch_losses.append(value)
                tracker.advance(value, epoch + 1, **(report_extra or {}))
    finally:
        accelerator.free_memory()
    return LoopResult(
        last_epoch_loss=torch.stack(epoch_losses).float().mean().item() if epoch_losses else 0.0,
        steps=steps,
        seconds=time.monotonic() - started,
    )


@dataclass
class TrainResult:
    """What every trainer returns; ``files`` are relative to ``artifact_dir``."""

    metrics: dict
    files: list[str]
    data_hash: str
    checksum: str = ""
    artifact_dir: str = ""


def publish(accelerator: Any, output_dir: str | os.PathLike, save: Callable[[], str]) -> tuple[str, list[str], str]:
    """Run ``save`` on the main process only; every process gets (checksum, files, artifact_dir)."""
    checksum = ""
    if accelerator.is_main_process:
        checksum = save()
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        checksum = load_artifact(output_dir).checksum
    artifact_dir = Path(output_dir).resolve()
    files = sorted(p.relative_to(artifact_dir).as_posix() for p in artifact_dir.rglob("*") if p.is_file())
    return checksum, files, str(artifact_dir)


def publish_module(
    setup: TrainingSetup,
    module: nn.Module,
    output_dir: str | os.PathLike,
    *,
    kind: str,
    architecture: str,
    config: ExampleTrainConfig,
    described: dict,
    examples: Sequence[Any],
    eval_examples: Sequence[Any],
    metrics: dict,
) -> TrainResult:
    """Save a span or rating model with the metadata both record and return the trainer's result.

    ``described`` holds what the model's own loader needs (its aspects or categories); the
    wall-clock ``seconds`` stay out of the artifact, so identical runs save identical files.
    """
    hashed = data_hash(examples)
    metadata = {
        "kind": kind,
        "architecture": architecture,
        "base_model": config.base_model,
        "config": asdict(config),
        **described,
        "max_length": setup.max_length,
        "seed": config.seed,
        "data_hash": hashed,
        "eval_data_hash": data_hash(eval_examples),
        "metrics": {key: value for key, value in metrics.items() if key != "seconds"},
    }
    checksum, files, artifact_dir = publish(
        setup.accelerator,
        output_dir,
        lambda: save_module_artifact(module.cpu(), setup.tokenizer, output_dir, metadata=metadata),
    )
    return TrainResult(metrics=metrics, files=files, data_hash=hashed, checksum=checksum, artifact_dir=artifact_dir)


def save_module_artifact(
    module: nn.Module, tokenizer: Any, output_dir: str | os.PathLike, *, metadata: dict, overwrite: bool = True
) -> str:
    """Save a backbone + head module: its weights, the backbone's config and the tokenizer."""

    def write_backbone(staging: Path) -> None:
        module.backbone.config.save_pretrained(str(staging / BACKBONE_DIR))
        tokenizer.save_pretrained(str(staging / BACKBONE_DIR))

    json.dumps(metadata)  # fail before writing anything if it is not JSON-serialisable
    return save_artifact(output_dir, metadata=metadata, tensors=module.state_dict(), write=write_backbone, overwrite=overwrite)


def load_module_artifact(
    artifact_dir: str | os.PathLike,
    *,
    architecture: str,
    build: Callable[[nn.Module, dict], nn.Module],
    expected_checksum: str | None = None,
) -> tuple[Any, nn.Module, Artifact]:
    """Verify an artifact, rebuild ``build(backbone, metadata)`` and load its weights (eval mode)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    artifact = load_artifact(artifact_dir, expected_checksum=expected_checksum)
    found = artifact.metadata.get("architecture")
    if found != architecture:
        raise ValueError(f"{artifact_dir} is not a model of architecture {architecture!r} (found {found!r})")
    backbone_dir = str(artifact.path / BACKBONE_DIR)
    config = AutoConfig.from_pretrained(backbone_dir, local_files_only=True)
    module = build(AutoModel.from_config(config), artifact.metadata)
    module.load_state_dict(artifact.load_tensors())
    module.eval()
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir, local_files_only=True)
    return tokenizer, module, artifact
