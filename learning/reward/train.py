"""Train a scalar reward model (or an ensemble) on preference pairs, ties and rankings.

Losses (ALGORITHMS.md §1): Bradley–Terry, with the strength margin when asked
(``strength_margin=True``); Davidson when ties should be
learned from (``loss="davidson"``, ν learned); Plackett–Luce for rankings, or the rankings split
into pairs (``ranking_loss="split_pairs"``). An ensemble of k members differs by seed or by a
bootstrap resample of the training prompts, and is saved as one artifact (see ``model.py``).

Multi-GPU: ``accelerate launch your_script.py`` runs this function in every process with DDP;
only the main process writes the artifact. A plain call is one process on one device.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from learning.data import (
    Messages,
    PreferencePair,
    RankingExample,
    canonical_order,
    data_hash,
    group_key,
    held_out_keys,
    partition_by_group,
    ranking_example_to_pairs,
    ranking_to_pairs,
)
from learning.errors import NotEnoughLabels, TrainingStopped
from learning.models import resolve_model
from learning.reward.common import (
    LoopSettings,
    StepTracker,
    TrainResult,
    publish,
    run_training_loop,
    set_up_training,
    steps_per_epoch,
)
from learning.reward.config import RewardTrainConfig
from learning.reward.evaluate import evaluate_pairs
from learning.reward.losses import aggregate_rewards, bradley_terry_loss, davidson_tie_loss, groups_to_levels, plackett_luce_loss
from learning.reward.model import (
    RewardModel,
    collate,
    compute_rewards,
    encode_pairs,
    save_reward_model,
    to_device,
)

__all__ = [
    "NotEnoughLabels",
    "RewardTrainConfig",
    "RewardTrainResult",
    "TrainingStopped",
    "train_reward_model",
]


# Every trainer returns the same result; the reward trainer's name for it is kept for callers.
RewardTrainResult = TrainResult


@dataclass
class _Item:
    """One training comparison: a pair (possibly a tie) or a whole ranking of one prompt."""

    kind: Literal["pair", "ranking"]
    prompt: Messages
    responses: list[str]
    levels: list[int]  # per response: 0 = best group; a pair [0, 1], a tie [0, 0]
    margin: float = 0.0
    group: str = ""
    annotator: str = ""

    @property
    def tie(self) -> bool:
        return self.kind == "pair" and self.levels[0] == self.levels[1]


@dataclass
class _Prepared:
    items: list[_Item] = field(default_factory=list)
    ties_dropped: int = 0
    rankings_dropped: int = 0
    ranking_pairs: int = 0


class _Trainable(nn.Module):
    """The reward model plus Davidson's log ν, so DDP sees every trained parameter in forward."""

    def __init__(self, model: RewardModel, log_nu: float | None) -> None:
        super().__init__()
        self.model = model
        self.log_nu = None if log_nu is None else nn.Parameter(torch.tensor(float(log_nu)))

    def forward(self, **batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # log ν leaves through forward (as a copy) so DDP's unused-parameter search finds it.
        return self.model(**batch), None if self.log_nu is None else self.log_nu.clone()


def _prepare(pairs: Sequence[PreferencePair], rankings: Sequence[RankingExample], config: RewardTrainConfig) -> _Prepared:
    """Turn the labels into training items, dropping what the chosen losses cannot use."""
    prepared = _Prepared()
    for pair in pairs:
        if pair.tie and config.loss == "bt":
            prepared.ties_dropped += 1
            continue
        prepared.items.append(
            _Item(
                "pair",
                pair.prompt,
                [pair.chosen, pair.rejected],
                [0, 0] if pair.tie else [0, 1],
                pair.margin,
                pair.group,
                pair.annotator,
            )
        )
    for ranking in rankings:
        groups = ranking.ordered_groups
        if len(groups) < 2:  # everything tied (or one item): no order to learn
            prepared.rankings_dropped += 1
            continue
        if config.ranking_loss == "split_pairs":
            for pair in ranking_example_to_pairs(ranking):
                prepared.items.append(
                    _Item("pair", pair.prompt, [pair.chosen, pair.rejected], [0, 1], 0.0, pair.group, pair.annotator)
                )
                prepared.ranking_pairs += 1
            continue
        ranked = [index for members in groups for index in members]
        levels = groups_to_levels(groups, len(ranking.responses))
        prepared.items.append(
            _Item(
                "ranking",
                ranking.prompt,
                [ranking.responses[i] for i in ranked],
                [levels[i] for i in ranked],
                0.0,
                ranking.group,
                ranking.annotator,
            )
        )
    return prepared


def _bootstrap(items: Sequence[_Item], seed: int) -> list[int]:
    """Resample the training prompts (groups) with replacement, keeping each group's items together.

    Returns positions in ``items`` (a position repeats when its group is drawn twice).
    """
    by_group: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        by_group.setdefault(group_key(item), []).append(position)
    keys = sorted(by_group)
    rng = random.Random(seed)
    return [position for key in (rng.choice(keys) for _ in keys) for position in by_group[key]]


def _initial_log_nu(items: Sequence[_Item]) -> float:
    """Start ν where P(tie | Δ = 0) = ν / (2 + ν) matches the training pairs' tie rate."""
    pairs = [item for item in items if item.kind == "pair"]
    rate = sum(item.tie for item in pairs) / max(len(pairs), 1)
    rate = min(max(rate, 0.01), 0.9)
    return math.log(2 * rate / (1 - rate))


def _with_lora(backbone: nn.Module, config: RewardTrainConfig) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    # "all-linear" works for any architecture, unlike per-model lists of module names.
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules="all-linear")
    return get_peft_model(backbone, lora)


def _comparisons(items: Sequence[_Item]) -> tuple[list[tuple[int, int, str, float]], list[tuple[int, int]]]:
    """Held-out comparisons as flat row positions: (better, worse, annotator, margin) and tied (a, b).

    Rankings contribute their non-tied pairs (margin 0), so every loss is judged on the same footing.
    """
    ordered: list[tuple[int, int, str, float]] = []
    tied: list[tuple[int, int]] = []
    offset = 0
    for item in items:
        if item.tie:
            tied.append((offset, offset + 1))
        else:
            by_level: dict[int, list[int]] = {}
            for position, level in enumerate(item.levels):
                by_level.setdefault(level, []).append(position)
            groups = [by_level[level] for level in sorted(by_level)]
            ordered.extend(
                (offset + better, offset + worse, item.annotator, item.margin) for better, worse in ranking_to_pairs(groups)
            )
        offset += len(item.responses)
    return ordered, tied


def train_reward_model(
    pairs: list[PreferencePair],
    *,
    config: RewardTrainConfig,
    output_dir: str | os.PathLike,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    rankings: Sequence[RankingExample] = (),
    eval_groups: Collection[str] | None = None,
) -> RewardTrainResult:
    """Train a reward model (or ensemble), evaluate it on held-out prompts, save it to ``output_dir``.

    ``output_dir`` belongs to the artifact: it is created (or replaced) atomically.
    ``progress`` receives ``{"step", "total_steps", "epoch", "loss", "eta_seconds"}`` (and
    ``member`` for ensembles) every few steps; ``should_stop`` is polled before each step and
    raises ``TrainingStopped`` when true. Raises ``ModelNotFoundError`` or ``NotEnoughLabels``
    before any heavy work. Deterministic for a given seed and set of labels (in any order) on the
    same device. Pairs and rankings of one prompt share a side of the held-out split;
    ``eval_groups`` (a study's fixed split, as group ids) fixes that side, otherwise
    ``held_out_keys`` picks it from every label (ties included, whatever the loss), so that BT
    and Davidson models of the same labels are evaluated on the same prompts.
    """
    resolve_model(config.base_model)
    # Canonical order: the same set of labels trains the same model whatever order the caller's
    # query returned them in.
    prepared = _prepare(canonical_order(pairs), canonical_order(list(rankings)), config)
    needed = max(config.min_pairs, 2)
    if len(prepared.items) < needed:
        dropped = ""
        if prepared.ties_dropped:
            dropped += f"; {prepared.ties_dropped} ties were dropped because loss='bt' (use loss='davidson' to learn from ties)"
        if prepared.rankings_dropped:
            dropped += f"; {prepared.rankings_dropped} rankings had fewer than two groups"
        raise NotEnoughLabels(
            f"reward model training needs at least {needed} preference pairs or rankings; it has {len(prepared.items)}{dropped}"
        )
    held_out = held_out_keys([*pairs, *rankings], eval_fraction=config.eval_fraction, seed=config.seed, eval_groups=eval_groups)
    train_items, eval_items = partition_by_group(prepared.items, held_out)
    if not train_items:
        raise NotEnoughLabels(
            f"reward model training has no labels outside the evaluation split ({len(eval_items)} comparisons are all in it)"
        )

    started = time.monotonic()
    setup = set_up_training(config)
    accelerator, device, tokenizer, max_length = setup.accelerator, setup.device, setup.tokenizer, setup.max_length
    pristine = setup.backbone  # each ensemble member starts from a copy

    def encode(items: Sequence[_Item]) -> tuple[list[list[dict[str, list[int]]]], int]:
        """Each item's encoded responses, and how many items had something cut to fit max_length."""
        texts = [(item.prompt, response) for item in items for response in item.responses]
        flat, cut = encode_pairs(tokenizer, texts, max_length)
        rows, item_cut, offset = [], 0, 0
        for item in items:
            rows.append(flat[offset : offset + len(item.responses)])
            item_cut += any(cut[offset : offset + len(item.responses)])
            offset += len(item.responses)
        return rows, item_cut

    train_rows, train_cut = encode(train_items)
    eval_rows, eval_cut = encode(eval_items)
    member_positions = []
    for member in range(config.ensemble_size):
        if config.ensemble_mode == "bootstrap":
            member_positions.append(_bootstrap(train_items, config.seed + member))
        else:
            member_positions.append(list(range(len(train_items))))
    per_member_steps = [
        steps_per_epoch(len(positions), config.batch_size, accelerator.num_processes) * config.epochs
        for positions in member_positions
    ]
    tracker = StepTracker(sum(per_member_steps), progress, accelerator.is_main_process)
    davidson = config.loss == "davidson"

    members: list[RewardModel] = []
    log_nus: list[float] = []
    last_losses: list[float] = []
    train_seconds = 0.0
    for member, positions in enumerate(member_positions):
        seed = config.seed + member
        torch.manual_seed(seed)  # the head's initialisation
        backbone = copy.deepcopy(pristine)
        if config.lora:
            backbone = _with_lora(backbone, config)
        items = [train_items[p] for p in positions]
        rows = [train_rows[p] for p in positions]
        trainable = _Trainable(RewardModel(backbone), _initial_log_nu(items) if davidson else None)
        lengths = [max(len(row["input_ids"]) for row in item_rows) for item_rows in rows]

        def batch_loss(module: nn.Module, indices: list[int], items: list[_Item] = items, rows: list = rows) -> torch.Tensor:
            batch = collate(tokenizer, [row for i in indices for row in rows[i]], device, max_length=max_length)
            rewards, log_nu = module(**batch)
            first, second, ties, margins = [], [], [], []
            ranked: list[list[int]] = []
            levels: list[list[int]] = []
            offset = 0
            for i in indices:
                item = items[i]
                if item.kind == "pair":
                    first.append(offset)
                    second.append(offset + 1)
                    ties.append(item.tie)
                    margins.append(item.margin if config.strength_margin else 0.0)
                else:
                    ranked.append(list(range(offset, offset + len(item.responses))))
                    levels.append(item.levels)
                offset += len(item.responses)
            total = rewards.new_zeros(())
            if first:
                # Index and label tensors go over without blocking (see to_device).
                r_first = rewards[to_device(torch.tensor(first), device)]
                r_second = rewards[to_device(torch.tensor(second), device)]
                margin = to_device(torch.tensor(margins, dtype=torch.float32), device)
                if davidson:
                    tie = to_device(torch.tensor(ties), device)
                    total = total + davidson_tie_loss(r_first, r_second, tie, log_nu, margin) * len(first)
                else:
                    total = total + bradley_terry_loss(r_first, r_second, margin) * len(first)
            if ranked:
                width = max(len(positions) for positions in ranked)
                index = to_device(torch.tensor([p + [0] * (width - len(p)) for p in ranked]), device)
                level = to_device(torch.tensor([lv + [-1] * (width - len(lv)) for lv in levels]), device)
                total = total + plackett_luce_loss(rewards[index], level) * len(ranked)
            return total / len(indices)

        backbone_params = list(trainable.model.backbone.parameters())
        head_params = list(trainable.model.head.parameters()) + ([trainable.log_nu] if davidson else [])
        result = run_training_loop(
            accelerator,
            trainable,
            backbone_params=backbone_params,
            head_params=head_params,
            lengths=lengths,
            settings=LoopSettings(
                epochs=config.epochs,
                batch_size=config.batch_size,
                learning_rate=config.lora_learning_rate if config.lora else config.learning_rate,
                head_learning_rate=config.head_learning_rate,
                seed=seed,
            ),
            loss_fn=batch_loss,
            tracker=tracker,
            should_stop=should_stop,
            label="reward model",
            report_extra={"member": member + 1} if config.ensemble_size > 1 else None,
        )
        train_seconds += result.seconds
        last_losses.append(result.last_epoch_loss)
        model = trainable.model
        if config.lora:
            model.backbone = model.backbone.merge_and_unload()
        model.eval()
        members.append(model)
        if davidson:
            log_nus.append(float(trainable.log_nu.detach().cpu()))

    eval_batch = max(config.batch_size * 2, 16)

    def member_rewards(encoded: Sequence[list[dict[str, list[int]]]]) -> torch.Tensor:
        flat = [row for item_rows in encoded for row in item_rows]
        scored = [
            compute_rewards(m, tokenizer, flat, batch_size=eval_batch, device=device, bf16=setup.bf16, max_length=max_length)
            for m in members
        ]
        return torch.tensor(scored, dtype=torch.float64).reshape(len(members), len(flat))

    def differences(rewards: torch.Tensor, comparisons: Sequence[tuple[int, ...] | tuple[int, int, str, float]]) -> list[float]:
        return [float(rewards[better] - rewards[worse]) for better, worse, *_ in comparisons]

    eval_rewards = member_rewards(eval_rows)
    eval_mean = aggregate_rewards(eval_rewards, "mean")
    eval_ordered, eval_tied = _comparisons(eval_items)
    log_nu = sum(log_nus) / len(log_nus) if log_nus else None
    heldout = evaluate_pairs(
        differences(eval_mean, eval_ordered),
        annotators=[annotator for _, _, annotator, _ in eval_ordered],
        margins=[margin for *_, margin in eval_ordered] if config.strength_margin else None,
        tie_differences=differences(eval_mean, eval_tied) if davidson else None,
        log_nu=log_nu,
    )
    train_rewards = aggregate_rewards(member_rewards(train_rows), "mean")
    train_ordered, _ = _comparisons(train_items)
    train_metrics = evaluate_pairs(differences(train_rewards, train_ordered))
    n_processed = sum(len(positions) for positions in member_positions) * config.epochs

    metrics: dict[str, Any] = {
        "heldout_accuracy": heldout["accuracy"],
        # Its Wilson 95% interval, as two plain numbers so every table of metrics can show them.
        "heldout_accuracy_ci95_low": heldout["accuracy_ci95"][0] if heldout["accuracy_ci95"] else None,
        "heldout_accuracy_ci95_high": heldout["accuracy_ci95"][1] if heldout["accuracy_ci95"] else None,
        "heldout_log_likelihood": heldout["log_likelihood"],
        "heldout_ece": heldout["ece"],
        "per_annotator_agreement": heldout["per_annotator_agreement"],
        "train_loss": sum(last_losses) / len(last_losses),
        "train_accuracy": train_metrics["accuracy"],
        "n_train": len(train_items),
        "n_eval": len(eval_items),
        "n_eval_comparisons": heldout["n"],
        # Comparisons with a response or prompt cut to fit max_length (oldest turns go first).
        "n_truncated": train_cut + eval_cut,
        "n_ties": sum(item.tie for item in prepared.items),
        "ties_dropped": prepared.ties_dropped,
        "n_rankings": sum(item.kind == "ranking" for item in prepared.items),
        "rankings_dropped": prepared.rankings_dropped,
        "ranking_pairs": prepared.ranking_pairs,
        "loss": config.loss,
        "strength_margin": config.strength_margin,
        "ensemble_size": config.ensemble_size,
        "steps": tracker.step,
        "train_seconds": round(train_seconds, 3),
        "pairs_per_second": round(n_processed / train_seconds, 3) if train_seconds > 0 else None,
    }
    if davidson:
        metrics["tie_nu"] = math.exp(log_nu) if log_nu is not None else None
        metrics["heldout_davidson_log_likelihood"] = heldout["davidson_log_likelihood"]
        metrics["n_eval_ties"] = len(eval_tied)
    if len(members) > 1:
        metrics["member_heldout_accuracy"] = [
            evaluate_pairs(differences(eval_rewards[m], eval_ordered))["accuracy"] for m in range(len(members))
        ]
    metrics["seconds"] = round(time.monotonic() - started, 3)

    hashed = data_hash([*pairs, *rankings])
    metadata = {
        "base_model": config.base_model,
        "config": asdict(config),
        "seed": config.seed,
        "data_hash": hashed,
        "eval_data_hash": data_hash(_items_as_labels(eval_items)),
        # Wall-clock figures would make identical runs differ; keep them out of the artifact.
        "metrics": {key: value for key, value in metrics.items() if key not in _TIMING_KEYS},
    }
    checksum, files, artifact_dir = publish(
        accelerator,
        output_dir,
        lambda: save_reward_model(
            [m.cpu() for m in members], tokenizer, output_dir, max_length=max_length, metadata=metadata, overwrite=True
        ),
    )
    return RewardTrainResult(metrics=metrics, files=files, data_hash=hashed, checksum=checksum, artifact_dir=artifact_dir)


_TIMING_KEYS = ("seconds", "train_seconds", "pairs_per_second")


def _items_as_labels(items: Sequence[_Item]) -> list[Any]:
    """The held-out items as plain labels, for a hash of the evaluation set."""
    labels: list[Any] = []
    for item in items:
        if item.kind == "pair":
            labels.append(
                PreferencePair(
                    item.prompt, item.responses[0], item.responses[1], item.margin, item.group, item.annotator, item.tie
                )
            )
        else:
            by_level: dict[int, list[int]] = {}
            for position, level in enumerate(item.levels):
                by_level.setdefault(level, []).append(position)
            groups = [by_level[level] for level in sorted(by_level)]
            labels.append(RankingExample(item.prompt, list(item.responses), groups, item.group, item.annotator))
    return labels
