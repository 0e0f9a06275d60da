"""Scalar reward model: an encoder backbone, mean-pooled over tokens, and a linear head.

The input text is the chat prompt rendered as plain ``role: content`` lines, paired with the
response through the tokenizer's pair encoding (``[CLS] prompt [SEP] response [SEP]`` for
BERT-style encoders), truncated longest-first to ``max_length`` tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from learning.artifacts import Artifact, load_artifact, save_artifact
from learning.data import render_prompt

ARCHITECTURE = "mean-pool-linear-v1"
BACKBONE_DIR = "backbone"

PromptAndResponse = tuple[Sequence[dict], str]


class RewardModel(nn.Module):
    """r(x, y) = w · mean_t h_t(x, y) + b, with h the backbone's last hidden states."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any) -> torch.Tensor:
        """Rewards of shape (batch,), in float32 whatever the autocast dtype."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state.float()
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        # The head runs outside autocast: bf16 would round rewards to ~3 significant digits.
        with torch.autocast(device_type=pooled.device.type, enabled=False):
            return self.head(pooled.float()).squeeze(-1)


def disable_dropout(model: nn.Module) -> None:
    """Zero every dropout: BT compares two forward passes, and independent dropout masks only
    add noise to their difference (TRL's reward trainer does the same)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def effective_max_length(tokenizer: Any, backbone: nn.Module, max_length: int) -> int:
    """Clamp the requested length to what the position embeddings and tokenizer allow."""
    limits = [max_length]
    positions = getattr(backbone.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    return min(limits)


def tokenize(tokenizer: Any, items: Sequence[PromptAndResponse], max_length: int) -> list[dict[str, list[int]]]:
    """Encode (prompt messages, response) items, unpadded, truncated longest-first."""
    if not items:
        return []
    encoded = tokenizer(
        [render_prompt(prompt) for prompt, _ in items],
        [response for _, response in items],
        truncation="longest_first",
        max_length=max_length,
    )
    keys = list(encoded.keys())
    return [{key: encoded[key][i] for key in keys} for i in range(len(items))]


def collate(tokenizer: Any, rows: Sequence[dict[str, list[int]]], device: torch.device | str) -> dict[str, torch.Tensor]:
    """Pad a batch of encoded rows and move it to ``device``."""
    batch = tokenizer.pad(list(rows), padding=True, return_tensors="pt")
    return {key: value.to(device) for key, value in batch.items()}


def autocast_context(device: torch.device) -> Any:
    """bf16 autocast on CUDA, plain fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def compute_rewards(
    model: RewardModel,
    tokenizer: Any,
    rows: Sequence[dict[str, list[int]]],
    *,
    batch_size: int,
    device: torch.device,
) -> list[float]:
    """Rewards for encoded rows, batched by length (less padding), returned in input order."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    rewards = [0.0] * len(rows)
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = collate(tokenizer, [rows[i] for i in indices], device)
            with autocast_context(device):
                values = model(**batch).tolist()
            for index, value in zip(indices, values, strict=True):
                rewards[index] = float(value)
    finally:
        model.train(was_training)
    return rewards


def save_reward_model(
    model: RewardModel,
    tokenizer: Any,
    output_dir: str | os.PathLike,
    *,
    max_length: int,
    metadata: dict,
    overwrite: bool = False,
) -> str:
    """Write the model as an artifact (weights + backbone config + tokenizer); returns checksum."""

    def write_backbone(staging: Path) -> None:
        model.backbone.config.save_pretrained(str(staging / BACKBONE_DIR))
        tokenizer.save_pretrained(str(staging / BACKBONE_DIR))

    full_metadata = {
        **metadata,
        "kind": "reward_model",
        "architecture": ARCHITECTURE,
        "max_length": max_length,
    }
    # Round-trip through JSON now so a non-serialisable value fails before any file is written.
    json.dumps(full_metadata)
    return save_artifact(
        output_dir,
        metadata=full_metadata,
        tensors=model.state_dict(),
        write=write_backbone,
        overwrite=overwrite,
    )


def load_reward_model(
    artifact_dir: str | os.PathLike, *, expected_checksum: str | None = None
) -> tuple[Any, RewardModel, Artifact]:
    """Verify and load a reward-model artifact: (tokenizer, model in eval mode, artifact)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    artifact = load_artifact(artifact_dir, expected_checksum=expected_checksum)
    if artifact.metadata.get("architecture") != ARCHITECTURE:
        raise ValueError(
            f"{artifact_dir} is not a reward model of architecture {ARCHITECTURE!r} "
            f"(found {artifact.metadata.get('architecture')!r})"
        )
    backbone_dir = str(artifact.path / BACKBONE_DIR)
    config = AutoConfig.from_pretrained(backbone_dir, local_files_only=True)
    model = RewardModel(AutoModel.from_config(config))
    model.load_state_dict(artifact.load_tensors())
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir, local_files_only=True)
    return tokenizer, model, artifact
