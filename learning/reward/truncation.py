"""Fitting a (prompt, response) pair into ``max_length`` tokens without losing what matters.

A reward model judges the response as a reply to the latest turns of the conversation, so a
pair that is too long is cut in this order:

1. the oldest turns of the prompt go first, whole (the rendered ``role: content`` lines stay
   well-formed);
2. if the latest turn alone is still too long, its content loses its oldest tokens (its
   ``role:`` prefix stays);
3. the response is kept whole, unless it alone would leave the prompt fewer than
   ``min(prompt tokens, budget // 4)`` tokens: then the response keeps its beginning and loses
   its end (a reply is read from the start), and the prompt keeps that quarter of the budget.

Plain Python over a Hugging Face *fast* tokenizer (character offsets); no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from learning.data import Messages, render_prompt

# The share of the token budget the prompt keeps, at least, when the response is long.
PROMPT_SHARE = 4


@dataclass(frozen=True)
class FittedPair:
    """The prompt text and response text to encode as a pair, and whether anything was cut."""

    prompt: str
    response: str
    cut: bool


def _turns(prompt: Messages | str) -> list[tuple[str, str]]:
    """(``role: `` prefix, content) per turn; a plain string is one turn without a prefix."""
    if isinstance(prompt, str):
        return [("", prompt)]
    return [(f"{m.get('role', 'user')}: ", str(m.get("content", ""))) for m in prompt]


def _count(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def _keep_first_tokens(tokenizer: Any, text: str, n: int) -> str:
    """The start of ``text`` covering its first ``n`` tokens."""
    if n <= 0:
        return ""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return text if n >= len(offsets) else text[: offsets[n - 1][1]]


def _keep_last_tokens(tokenizer: Any, text: str, n: int) -> str:
    """The end of ``text`` covering its last ``n`` tokens."""
    if n <= 0:
        return ""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return text if n >= len(offsets) else text[offsets[-n][0] :]


def fit_pair(tokenizer: Any, prompt: Messages | str, response: str, max_length: int) -> FittedPair:
    """Cut (prompt, response) to fit ``max_length`` tokens with special tokens, as the module says.

    The prompt comes back rendered as ``role: content`` lines (``render_prompt``'s format).
    Token counts are taken per turn, so tokenizers that merge across line breaks may still be a
    token or two over; the caller's ``truncation="longest_first"`` takes care of that rest.
    """
    turns = _turns(prompt)
    lines = [prefix + content for prefix, content in turns]
    # Each line but the last is followed by a line break in the rendered prompt.
    line_tokens = _count(tokenizer, [line + "\n" for line in lines[:-1]] + lines[-1:])
    response_tokens = _count(tokenizer, [response])[0]
    budget = max(max_length - tokenizer.num_special_tokens_to_add(pair=True), 2)
    prompt_tokens = sum(line_tokens)
    if prompt_tokens + response_tokens <= budget:
        return FittedPair("\n".join(lines), response, False)

    response_keep = min(response_tokens, budget - min(prompt_tokens, budget // PROMPT_SHARE))
    if response_keep < response_tokens:
        response = _keep_first_tokens(tokenizer, response, response_keep)
    room = budget - response_keep
    kept: list[str] = []
    for (prefix, content), line, count in zip(reversed(turns), reversed(lines), reversed(line_tokens), strict=True):
        if count <= room:
            kept.insert(0, line)
            room -= count
            continue
        if not kept:  # the latest turn alone is too long: keep its prefix and the end of its content
            prefix_tokens = _count(tokenizer, [prefix])[0] if prefix else 0
            kept.insert(0, prefix + _keep_last_tokens(tokenizer, content, room - prefix_tokens))
        break  # older turns go whole
    return FittedPair("\n".join(kept), response, True)


def fit_pairs(tokenizer: Any, items: Sequence[tuple[Messages | str, str]], max_length: int) -> list[FittedPair]:
    """``fit_pair`` for many items; those that already fit are measured in one batch and left alone."""
    if not items:
        return []
    prompts = [render_prompt(prompt) for prompt, _ in items]
    lengths = [len(ids) for ids in tokenizer(prompts, [response for _, response in items])["input_ids"]]
    return [
        FittedPair(rendered, response, False) if length <= max_length else fit_pair(tokenizer, prompt, response, max_length)
        for rendered, (prompt, response), length in zip(prompts, items, lengths, strict=True)
    ]
