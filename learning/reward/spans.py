"""Fine-grained span rewards (Wu et al. 2023, Fine-Grained RLHF; ALGORITHMS.md §1).

A response is cut into segments: sentences, or sub-sentences split after a word ending in
, ; ! or ? when both sides keep at least 5 words. A segment carries error category k if any
character of an annotated span of category k falls inside it, else "O" for k.

The model is a token classifier that predicts only at a separator token inserted at the end of
each segment (the tokenizer's SEP token, or EOS for tokenizers without one); every other token
has label −100 and is ignored by the loss. One multi-label head, ``nn.Linear(hidden, K)`` over
the backbone's hidden state, gives a logit per category: a segment can carry several categories
at once, and one forward pass serves all K reward models the paper trains separately. The
paper uses a different segmentation per category (sub-sentences for relevance, sentences for
factuality); here one model has one segmentation, so train one model per segmentation level.

Dense reward at the end of segment j: Σ_k (+w_k if category k predicts "O", else −w_k), with
the paper's weights by default (relevance-type 0.3, factuality-type 0.5).

Response-level labels that belong to no segment (the paper's "missing information", which its
sequence-level completeness model learns) are ignored here; see ``ratings.py`` for a
sequence-level model.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from learning.data import Messages, SpanExample, canonical_order
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
from learning.reward.config import SEGMENTATIONS, SpanTrainConfig
from learning.reward.evaluate import binary_f1
from learning.reward.model import BackboneWithHead, autocast_context, collate, pick_device, to_device
from learning.reward.truncation import fit_pairs

__all__ = [
    "SegmentPrediction",
    "SpanExample",
    "SpanModel",
    "SpanTrainConfig",
    "category_weight",
    "dense_rewards",
    "label_segments",
    "predict_segments",
    "predict_segments_batch",
    "segment_response",
    "split_sentences",
    "split_subsentences",
    "train_span_model",
]

ARCHITECTURE = "span-separator-multilabel-v1"
IGNORE = -100
Segmentation = Literal[SEGMENTATIONS]

# Words followed by a period that do not end a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al inc ltd co corp no nos fig approx dept est "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k".split()
)
_TERMINATOR = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Is this run of terminators the end of a sentence, or an abbreviation / initial?"""
    if "!" in match.group() or "?" in match.group():
        return True
    before = re.search(r"(\S+)$", text[: match.start()])
    word = before.group(1).lower().lstrip("\"'“‘([") if before else ""
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return False
    rest = text[match.end() :].lstrip()
    return not (rest and rest[0].islower())  # "approx. five", "e.g. this": no new sentence


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence (start, end) character ranges, whitespace trimmed, in order.

    A sentence ends after . ! or ? (with any closing quotes or brackets) followed by white
    space, unless the period closes a known abbreviation or a single-letter initial, or the next
    word starts in lower case; a line break always ends one. Decimals such as 2.5 never split.
    """
    cuts = {match.end() for match in _TERMINATOR.finditer(text) if _ends_sentence(text, match)}
    cuts |= {match.start() for match in re.finditer(r"\n", text)}
    sentences = []
    start = 0
    for cut in sorted(cuts | {len(text)}):
        piece = _trim(text, start, cut)
        if piece[1] > piece[0]:
            sentences.append(piece)
        start = cut
    return sentences


def split_subsentences(text: str, min_words: int = 5) -> list[tuple[int, int]]:
    """Sub-sentence ranges: each sentence split after words ending in , ; ! or ?.

    A split is made only where the piece before it and the rest of the sentence after it both
    have at least ``min_words`` words (white-space separated), so no piece is shorter unless its
    whole sentence is.
    """
    pieces = []
    for sentence_start, sentence_end in split_sentences(text):
        words = [
            (m.start() + sentence_start, m.end() + sentence_start) for m in re.finditer(r"\S+", text[sentence_start:sentence_end])
        ]
        first = 0  # index of the first word of the current piece
        for index in range(len(words) - 1):
            word_end = words[index][1]
            if text[word_end - 1] in ",;!?" and index + 1 - first >= min_words and len(words) - (index + 1) >= min_words:
                pieces.append((words[first][0], word_end))
                first = index + 1
        pieces.append((words[first][0], sentence_end))
    return pieces


def segment_response(text: str, segmentation: Segmentation = "sentence", min_words: int = 5) -> list[tuple[int, int]]:
    """Segments of a response at the given level (see ``split_sentences`` / ``split_subsentences``)."""
    if segmentation == "sentence":
        return split_sentences(text)
    if segmentation == "subsentence":
        return split_subsentences(text, min_words)
    raise ValueError(f"segmentation must be 'sentence' or 'subsentence', got {segmentation!r}")


def label_segments(
    segments: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, str]], categories: Sequence[str]
) -> list[dict[str, bool]]:
    """Per segment, {category: True if any character of a span of that category lies in it}.

    Spans of categories not in ``categories`` are ignored.
    """
    labels = []
    for seg_start, seg_end in segments:
        labels.append(
            {
                category: any(cat == category and start < seg_end and end > seg_start for start, end, cat in spans)
                for category in categories
            }
        )
    return labels


@dataclass(frozen=True)
class SegmentPrediction:
    """A segment's predicted categories: ``labels[k]`` is True when category k (an error) is
    predicted, False for "O". A segment cut off by ``max_length`` gets no prediction
    (``labels == {}``, ``truncated=True``)."""

    start: int
    end: int
    labels: dict[str, bool]
    probabilities: dict[str, float] = field(default_factory=dict)
    truncated: bool = False


# The paper's weights: relevance-type errors 0.3, factuality-type errors 0.5.
RELEVANCE_WEIGHT = 0.3
FACTUALITY_WEIGHT = 0.5
_FACTUAL_HINTS = ("fact", "ground", "verif", "inconsistent", "halluc")


def category_weight(category: str) -> float:
    """Default weight of a category: 0.5 for factuality-type names, 0.3 for everything else.

    A name is factuality-type when it contains fact, ground, verif, inconsistent or halluc
    (covering the paper's "Wrong-Grounding" and "Unverifiable"); pass explicit weights to
    ``dense_rewards`` for anything else.
    """
    name = category.lower()
    return FACTUALITY_WEIGHT if any(hint in name for hint in _FACTUAL_HINTS) else RELEVANCE_WEIGHT


def dense_rewards(
    predictions: Sequence[SegmentPrediction], weights: Mapping[str, float] | None = None
) -> list[tuple[int, float]]:
    """(segment end character, reward) per segment: Σ_k (+w_k if k is "O" else −w_k).

    ``weights`` maps categories to w_k; categories it leaves out use ``category_weight``. A
    truncated segment (no prediction) gets 0.
    """
    weights = weights or {}
    rewards = []
    for prediction in predictions:
        total = 0.0
        for category, has_error in prediction.labels.items():
            weight = weights.get(category, category_weight(category))
            total += -weight if has_error else weight
        rewards.append((prediction.end, total))
    return rewards


class SpanModel(BackboneWithHead):
    """Backbone + one multi-label linear head: logits (batch, tokens, categories) in float32; one output per category."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any) -> torch.Tensor:
        return self.head_of(self.hidden_states(input_ids, attention_mask, **extra))


def separator_token(tokenizer: Any) -> str:
    """The token placed at the end of each segment: SEP where the tokenizer has one, else EOS."""
    token = tokenizer.sep_token or tokenizer.eos_token
    if not token:
        raise ValueError("the tokenizer has neither a SEP nor an EOS token to mark segment ends")
    return token


def encode_segments(
    tokenizer: Any,
    items: Sequence[tuple[Messages | str, str, Sequence[tuple[int, int]]]],
    max_length: int,
) -> tuple[list[tuple[dict[str, list[int]], list[int]]], list[bool]]:
    """Encode (prompt, response, segments) with a separator after each segment.

    Returns, per item, the encoded row and the token positions of its separators (one per
    segment, fewer when truncation cut the end of the response off), and whether the item was
    cut to fit ``max_length`` (``fit_pair``: the prompt's oldest turns go first). The response
    keeps its own white space; a separator string already in a response is blanked so it
    cannot be mistaken for a segment end.
    """
    if not items:
        return [], []
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("span models need a fast (Rust) tokenizer to locate separators")
    sep = separator_token(tokenizer)
    sep_id = tokenizer.convert_tokens_to_ids(sep)
    marked = []
    for _, response, segments in items:
        pieces, previous = [], 0
        for _, end in segments:
            pieces.append(response[previous:end].replace(sep, " ") + sep)
            previous = end
        pieces.append(response[previous:].replace(sep, " "))
        marked.append("".join(pieces))
    fitted = fit_pairs(tokenizer, [(prompt, text) for (prompt, _, _), text in zip(items, marked, strict=True)], max_length)
    encoded = tokenizer(
        [f.prompt for f in fitted], [f.response for f in fitted], truncation="longest_first", max_length=max_length
    )
    results = []
    for index, (_, _, segments) in enumerate(items):
        ids = encoded["input_ids"][index]
        sequence = encoded.sequence_ids(index)
        positions = [p for p, (token, part) in enumerate(zip(ids, sequence, strict=True)) if part == 1 and token == sep_id]
        row = {key: list(encoded[key][index]) for key in encoded.keys()}
        results.append((row, positions[: len(segments)]))
    return results, [f.cut for f in fitted]


def _label_tensor(
    positions: Sequence[Sequence[int]], labels: Sequence[Sequence[list[int]]], width: int, n_categories: int
) -> torch.Tensor:
    """(batch, width, K) targets: 0/1 at separator positions, IGNORE everywhere else."""
    target = torch.full((len(positions), width, n_categories), float(IGNORE))
    for row, (row_positions, row_labels) in enumerate(zip(positions, labels, strict=True)):
        for position, values in zip(row_positions, row_labels, strict=False):
            target[row, position] = torch.tensor(values, dtype=torch.float32)
    return target


def _predict_rows(
    model: SpanModel,
    tokenizer: Any,
    encoded: Sequence[tuple[dict[str, list[int]], list[int]]],
    *,
    batch_size: int,
    device: torch.device,
    max_length: int,
    bf16: bool | None = None,
) -> list[list[list[float]]]:
    """Per item, per found separator, the K category probabilities."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]["input_ids"]))
    probabilities: list[list[list[float]]] = [[] for _ in encoded]
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                batch = collate(tokenizer, [encoded[i][0] for i in indices], device, max_length=max_length)
                with autocast_context(device, bf16):
                    logits = model(**batch)
                values = torch.sigmoid(logits).cpu()
                for row, index in enumerate(indices):
                    probabilities[index] = values[row, encoded[index][1]].tolist()
    finally:
        model.train(was_training)
    return probabilities


def _validate(config: SpanTrainConfig, categories: Sequence[str]) -> None:
    if not categories or len(set(categories)) != len(categories):
        raise ValueError(f"categories must be a non-empty list of distinct names, got {list(categories)!r}")


def train_span_model(
    examples: Sequence[SpanExample],
    *,
    categories: Sequence[str],
    config: SpanTrainConfig,
    output_dir: str | os.PathLike,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    eval_groups: Collection[str] | None = None,
) -> TrainResult:
    """Train a span (segment-level) model, report per-category F1 on held-out groups, save it.

    Same contract as ``train_reward_model``: ``ModelNotFoundError`` / ``NotEnoughLabels`` before
    any heavy work, progress reports, cooperative stop, atomic artifact. Examples whose response
    has no segment (empty text) are skipped.
    """
    resolve_model(config.base_model)
    categories = list(categories)
    _validate(config, categories)

    def segments_of(example: SpanExample) -> list[tuple[int, int]]:
        return segment_response(example.response, config.segmentation, config.min_subsentence_words)

    usable = [example for example in canonical_order(list(examples)) if segments_of(example)]
    needed = max(config.min_examples, 2)
    if len(usable) < needed:
        raise NotEnoughLabels(f"span model training needs at least {needed} labelled responses; it has {len(usable)}")
    train_examples, eval_examples = split_examples(usable, examples, config=config, eval_groups=eval_groups, label="span model")

    started = time.monotonic()
    setup = set_up_training(config)
    accelerator, device, tokenizer, max_length = setup.accelerator, setup.device, setup.tokenizer, setup.max_length
    tokenizer.padding_side = "right"  # separator positions are counted from the left
    torch.manual_seed(config.seed)
    model = SpanModel(setup.backbone, len(categories))

    def prepare(subset: Sequence[SpanExample]) -> tuple[list, list[list[list[int]]], int]:
        segments = [segments_of(example) for example in subset]
        encoded, cut = encode_segments(
            tokenizer, [(e.prompt, e.response, s) for e, s in zip(subset, segments, strict=True)], max_length
        )
        labels = [
            [[int(row[c]) for c in categories] for row in label_segments(s, e.spans, categories)]
            for e, s in zip(subset, segments, strict=True)
        ]
        return encoded, labels, sum(cut)

    train_encoded, train_labels, train_cut = prepare(train_examples)
    lengths = [len(row["input_ids"]) for row, _ in train_encoded]

    def batch_loss(module: nn.Module, indices: list[int]) -> torch.Tensor:
        batch = collate(tokenizer, [train_encoded[i][0] for i in indices], device, max_length=max_length)
        logits = module(**batch)
        target = _label_tensor(
            [train_encoded[i][1] for i in indices], [train_labels[i] for i in indices], logits.shape[1], len(categories)
        )
        mask = target != IGNORE
        count = int(mask.sum())  # counted on the host: no wait for the GPU
        if count == 0:  # every separator truncated away: nothing to learn from this batch
            return logits.sum() * 0.0
        # A masked sum rather than logits[mask]: boolean indexing would make the host wait.
        losses = F.binary_cross_entropy_with_logits(logits, to_device(target.clamp(min=0), device), reduction="none")
        return (losses * to_device(mask, device)).sum() / count

    total_steps = steps_per_epoch(len(train_examples), config.batch_size, accelerator.num_processes) * config.epochs
    tracker = StepTracker(total_steps, progress, accelerator.is_main_process)
    loop = run_training_loop(
        accelerator,
        model,
        backbone_params=list(model.backbone.parameters()),
        head_params=list(model.head.parameters()),
        lengths=lengths,
        settings=LoopSettings(config.epochs, config.batch_size, config.learning_rate, config.head_learning_rate, config.seed),
        loss_fn=batch_loss,
        tracker=tracker,
        should_stop=should_stop,
        label="span model",
    )

    eval_encoded, eval_labels, eval_cut = prepare(eval_examples)
    probabilities = _predict_rows(
        model,
        tokenizer,
        eval_encoded,
        batch_size=max(config.batch_size * 2, 16),
        device=device,
        max_length=max_length,
        bf16=setup.bf16,
    )
    per_category: dict[str, dict] = {}
    for k, category in enumerate(categories):
        truth, predicted = [], []
        for item_probabilities, item_labels in zip(probabilities, eval_labels, strict=True):
            for segment_probabilities, segment_labels in zip(item_probabilities, item_labels, strict=False):
                truth.append(bool(segment_labels[k]))
                predicted.append(segment_probabilities[k] > 0.5)
        per_category[category] = binary_f1(truth, predicted)
    n_eval_segments = sum(len(p) for p in probabilities)
    metrics: dict[str, Any] = {
        "segment_f1": {c: m["f1"] for c, m in per_category.items()},
        "segment_precision": {c: m["precision"] for c, m in per_category.items()},
        "segment_recall": {c: m["recall"] for c, m in per_category.items()},
        # The share of held-out segments that truly carry each category: the F1 of always
        # predicting the error is 2p / (1 + p), a floor to read segment_f1 against.
        "segment_positive_rate": {c: (m["support"] / m["n"] if m["n"] else None) for c, m in per_category.items()},
        "train_loss": loop.last_epoch_loss,
        "n_train": len(train_examples),
        "n_eval": len(eval_examples),
        "n_train_segments": sum(len(p) for _, p in train_encoded),
        "n_eval_segments": n_eval_segments,
        "n_truncated": train_cut + eval_cut,  # examples cut to fit max_length
        "steps": loop.steps,
        "seconds": round(time.monotonic() - started, 3),
    }
    return publish_module(
        setup,
        model,
        output_dir,
        kind="span_model",
        architecture=ARCHITECTURE,
        config=config,
        described={"categories": categories, "separator_token": separator_token(tokenizer)},
        examples=examples,
        eval_examples=eval_examples,
        metrics=metrics,
    )


def load_span_model(artifact_dir: str | os.PathLike, *, expected_checksum: str | None = None) -> tuple[Any, SpanModel, Any]:
    """Verify and load a span-model artifact: (tokenizer, model in eval mode, artifact)."""
    tokenizer, model, artifact = load_module_artifact(
        artifact_dir,
        architecture=ARCHITECTURE,
        build=lambda backbone, metadata: SpanModel(backbone, len(metadata["categories"])),
        expected_checksum=expected_checksum,
    )
    tokenizer.padding_side = "right"
    assert isinstance(model, SpanModel)
    return tokenizer, model, artifact


def predict_segments_batch(
    artifact_dir: str | os.PathLike,
    items: Sequence[tuple[Messages | str, str]],
    *,
    batch_size: int = 16,
    expected_checksum: str | None = None,
    threshold: float = 0.5,
) -> list[list[SegmentPrediction]]:
    """Segment each (prompt, response) as the model was trained and predict every segment's categories."""
    tokenizer, model, artifact = load_span_model(artifact_dir, expected_checksum=expected_checksum)
    metadata = artifact.metadata
    categories: list[str] = metadata["categories"]
    config = metadata["config"]
    segments = [segment_response(response, config["segmentation"], config["min_subsentence_words"]) for _, response in items]
    encoded, _ = encode_segments(
        tokenizer, [(prompt, response, s) for (prompt, response), s in zip(items, segments, strict=True)], metadata["max_length"]
    )
    device = pick_device()
    model.to(device)
    probabilities = _predict_rows(
        model, tokenizer, encoded, batch_size=batch_size, device=device, max_length=metadata["max_length"]
    )
    results = []
    for item_segments, item_probabilities in zip(segments, probabilities, strict=True):
        predictions = []
        for index, (start, end) in enumerate(item_segments):
            if index >= len(item_probabilities):
                predictions.append(SegmentPrediction(start, end, {}, {}, truncated=True))
                continue
            values = dict(zip(categories, item_probabilities[index], strict=True))
            predictions.append(SegmentPrediction(start, end, {c: p > threshold for c, p in values.items()}, values))
        results.append(predictions)
    return results


def predict_segments(
    artifact_dir: str | os.PathLike, prompt: Messages | str, response: str, *, expected_checksum: str | None = None
) -> list[SegmentPrediction]:
    """Predictions for one response's segments, in order (see ``predict_segments_batch``)."""
    return predict_segments_batch(artifact_dir, [(prompt, response)], expected_checksum=expected_checksum)[0]
