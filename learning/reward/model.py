"""Scalar reward model: an encoder backbone, mean-pooled over tokens, and a linear head.

The input text is the chat prompt rendered as plain ``role: content`` lines, paired with the
response through the tokenizer's pair encoding (``[CLS] prompt [SEP] response [SEP]`` for
BERT-style encoders). A pair over ``max_length`` tokens loses the prompt's oldest turns first
and keeps the response (see ``truncation.py``).

An artifact holds one model or an ensemble of k members. Members are stored in the one
weights.safetensors under the key prefix ``members.<i>.`` (a single model keeps the plain
``backbone.`` / ``head.`` keys of earlier versions): one checksummed file, loaded in one read,
with no per-member folders to keep consistent. Each member is a full copy of the backbone
(LoRA adapters are merged before saving), which is cheap for encoder-sized backbones.
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
from learning.reward.truncation import fit_pairs

ARCHITECTURE = "mean-pool-linear-v1"
BACKBONE_DIR = "backbone"

PromptAndResponse = tuple[Sequence[dict], str]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over real (unpadded) tokens, in float32."""
    mask = attention_mask.unsqueeze(-1).float()
    return (hidden.float() * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class BackboneWithHead(nn.Module):
    """A backbone and a linear head of ``n_outputs`` over its last hidden states: the reward, rating and span models.

    Saved and loaded as ``backbone.*`` and ``head.*`` weights (``save_module_artifact``,
    ``save_reward_model``). The head runs in float32 outside autocast: bf16 would round its
    outputs to about 3 significant digits.
    """

    def __init__(self, backbone: nn.Module, n_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, n_outputs)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any) -> torch.Tensor:
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    def head_of(self, hidden: torch.Tensor) -> torch.Tensor:
        """The head on pooled or per-token hidden states, in float32."""
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return self.head(hidden.float())


class RewardModel(BackboneWithHead):
    """r(x, y) = w · mean_t h_t(x, y) + b, with h the backbone's last hidden states."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any) -> torch.Tensor:
        """Rewards of shape (batch,), in float32 whatever the autocast dtype."""
        hidden = self.hidden_states(input_ids, attention_mask, **extra)
        return self.head_of(mean_pool(hidden, attention_mask)).squeeze(-1)


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


def encode_pairs(
    tokenizer: Any, items: Sequence[PromptAndResponse], max_length: int
) -> tuple[list[dict[str, list[int]]], list[bool]]:
    """Encode (prompt messages, response) items, unpadded: (rows, whether each item was cut).

    Items over ``max_length`` are cut by ``fit_pair``: oldest turns first, the response kept.
    """
    if not items:
        return [], []
    fitted = fit_pairs(tokenizer, items, max_length)
    encoded = tokenizer(
        [f.prompt for f in fitted],
        [f.response for f in fitted],
        truncation="longest_first",  # only the token or two that per-turn counting can miss
        max_length=max_length,
    )
    keys = list(encoded.keys())
    return [{key: encoded[key][i] for key in keys} for i in range(len(items))], [f.cut for f in fitted]


def tokenize(tokenizer: Any, items: Sequence[PromptAndResponse], max_length: int) -> list[dict[str, list[int]]]:
    """``encode_pairs`` without the cut flags, for scoring."""
    return encode_pairs(tokenizer, items, max_length)[0]


# On CUDA, batches are padded to a multiple of this many tokens. Length bucketing would otherwise
# give nearly every batch its own shape, and GPU libraries pay a one-off cost per new shape
# (cuDNN attention builds an execution graph for each; cuBLAS picks an algorithm for each).
CUDA_PAD_MULTIPLE = 64


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Copy to ``device``; to a GPU through pinned memory and without blocking, so the host can
    queue the next kernels instead of waiting for the GPU to drain."""
    device = torch.device(device)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def padded_length(longest: int, max_length: int, multiple: int = CUDA_PAD_MULTIPLE) -> int:
    """``longest`` rounded up to a multiple of ``multiple``, but never past ``max_length``."""
    return max(min(-(-longest // multiple) * multiple, max_length), longest)


def collate(
    tokenizer: Any, rows: Sequence[dict[str, list[int]]], device: torch.device | str, *, max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad a batch of encoded rows (right padding) and move it to ``device``.

    With ``max_length`` (the length rows were truncated to) and a CUDA device, the padded length
    is rounded up to a multiple of ``CUDA_PAD_MULTIPLE``, never beyond ``max_length``.
    """
    device = torch.device(device)
    if device.type == "cuda" and max_length is not None:
        target = padded_length(max(len(row["input_ids"]) for row in rows), max_length)
        batch = tokenizer.pad(list(rows), padding="max_length", max_length=target, return_tensors="pt")
    else:
        batch = tokenizer.pad(list(rows), padding=True, return_tensors="pt")
    return {key: to_device(value, device) for key, value in batch.items()}


def resolve_bf16(bf16: bool | None) -> bool:
    """``None`` means bf16 where it is fast and safe: a CUDA device that supports it."""
    if bf16 is None:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(bf16)


def autocast_context(device: torch.device, bf16: bool | None = None) -> Any:
    """bf16 autocast when ``resolve_bf16(bf16)`` and the device can do it, plain fp32 otherwise."""
    if resolve_bf16(bf16) and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
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
    bf16: bool | None = None,
    max_length: int | None = None,
) -> list[float]:
    """Rewards for encoded rows, batched by length (less padding), returned in input order."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    rewards = [0.0] * len(rows)
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = collate(tokenizer, [rows[i] for i in indices], device, max_length=max_length)
            with autocast_context(device, bf16):
                values = model(**batch).tolist()
            for index, value in zip(indices, values, strict=True):
                rewards[index] = float(value)
    finally:
        model.train(was_training)
    return rewards


def _member_prefix(index: int, count: int) -> str:
    return "" if count == 1 else f"members.{index}."


def save_reward_model(
    model: RewardModel | Sequence[RewardModel],
    tokenizer: Any,
    output_dir: str | os.PathLike,
    *,
    max_length: int,
    metadata: dict,
    overwrite: bool = False,
) -> str:
    """Write a model, or the members of an ensemble, as one artifact; returns its checksum.

    The artifact holds the weights, the backbone config and the tokenizer (members share both).
    """
    members = [model] if isinstance(model, RewardModel) else list(model)
    if not members:
        raise ValueError("no reward model to save")

    def write_backbone(staging: Path) -> None:
        members[0].backbone.config.save_pretrained(str(staging / BACKBONE_DIR))
        tokenizer.save_pretrained(str(staging / BACKBONE_DIR))

    full_metadata = {
        **metadata,
        "kind": "reward_model",
        "architecture": ARCHITECTURE,
        "max_length": max_length,
        "ensemble_size": len(members),
    }
    # Round-trip through JSON now so a non-serialisable value fails before any file is written.
    json.dumps(full_metadata)
    tensors = {
        _member_prefix(index, len(members)) + name: tensor
        for index, member in enumerate(members)
        for name, tensor in member.state_dict().items()
    }
    return save_artifact(output_dir, metadata=full_metadata, tensors=tensors, write=write_backbone, overwrite=overwrite)


def load_reward_members(
    artifact_dir: str | os.PathLike, *, expected_checksum: str | None = None
) -> tuple[Any, list[RewardModel], Artifact]:
    """Verify and load a reward-model artifact: (tokenizer, members in eval mode, artifact).

    A single model comes back as a list of one member.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    artifact = load_artifact(artifact_dir, expected_checksum=expected_checksum)
    if artifact.metadata.get("architecture") != ARCHITECTURE:
        raise ValueError(
            f"{artifact_dir} is not a reward model of architecture {ARCHITECTURE!r} "
            f"(found {artifact.metadata.get('architecture')!r})"
        )
    backbone_dir = str(artifact.path / BACKBONE_DIR)
    config = AutoConfig.from_pretrained(backbone_dir, local_files_only=True)
    tensors = artifact.load_tensors()
    count = int(artifact.metadata.get("ensemble_size", 1))
    members = []
    for index in range(count):
        prefix = _member_prefix(index, count)
        member = RewardModel(AutoModel.from_config(config))
        member.load_state_dict({name[len(prefix) :]: value for name, value in tensors.items() if name.startswith(prefix)})
        member.eval()
        members.append(member)
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir, local_files_only=True)
    return tokenizer, members, artifact


def load_reward_model(
    artifact_dir: str | os.PathLike, *, expected_checksum: str | None = None
) -> tuple[Any, RewardModel, Artifact]:
    """Verify and load a single-model artifact: (tokenizer, model in eval mode, artifact).

    Ensembles load through ``load_reward_members``.
    """
    tokenizer, members, artifact = load_reward_members(artifact_dir, expected_checksum=expected_checksum)
    if len(members) != 1:
        raise ValueError(f"{artifact_dir} is an ensemble of {len(members)} members; load it with load_reward_members")
    return tokenizer, members[0], artifact
