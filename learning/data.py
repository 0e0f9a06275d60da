"""Plain preference data and its conversions; imported by the web process, so no torch here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

Messages = list[dict]


@dataclass(frozen=True)
class PreferencePair:
    """One pairwise judgement: ``chosen`` was preferred to ``rejected`` as a reply to ``prompt``.

    ``prompt`` is a list of chat messages ``{"role": ..., "content": ...}``. ``group`` identifies
    the prompt, so held-out splits never put one prompt on both sides; ``margin`` comes from the
    annotator's strength (see ``strength_to_margin``).
    """

    prompt: Messages
    chosen: str
    rejected: str
    margin: float = 0.0
    group: str = ""
    annotator: str = ""


# Llama 2's margin scale, normalised to [0, 1] so it is comparable with reward differences of
# a freshly initialised head ("slightly better", "better", "much better").
_STRENGTH_MARGINS = {1: 1 / 3, 2: 2 / 3, 3: 1.0}


def strength_to_margin(strength: int) -> float:
    """Map an annotator's strength 1..3 (slightly / better / much better) to a BT margin."""
    if isinstance(strength, bool) or strength not in _STRENGTH_MARGINS:
        raise ValueError(f"preference strength must be 1, 2 or 3, got {strength!r}")
    return _STRENGTH_MARGINS[strength]


def to_trl_preference_row(pair: PreferencePair) -> dict:
    """Convert a pair to TRL's conversational preference format (prompt/chosen/rejected)."""
    return {
        "prompt": [dict(message) for message in pair.prompt],
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
        "margin": float(pair.margin),
    }


def render_prompt(messages: Sequence[dict]) -> str:
    """Render chat messages as plain ``role: content`` lines, for encoders without a template."""
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _group_key(pair: PreferencePair) -> str:
    # A pair without a prompt id is grouped by its prompt text, so one prompt still never
    # straddles the split.
    if pair.group:
        return "group:" + pair.group
    return "prompt:" + hashlib.sha256(_canonical(pair.prompt).encode()).hexdigest()


def split_by_group(
    pairs: Sequence[PreferencePair], *, eval_fraction: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Split pairs into (train, eval) so that every group lies wholly on one side.

    Groups are ranked by a seeded hash of their key, and the first ``eval_fraction`` of them
    (by count of groups) go to eval. The result depends only on the set of groups and the seed,
    not on input order, and adding groups later moves few existing ones across the split.
    With two or more groups and ``eval_fraction > 0`` each side gets at least one group; with a
    single group everything is train. Input order is kept within each side.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction!r}")
    keys = sorted({_group_key(pair) for pair in pairs})
    ranked = sorted(keys, key=lambda key: hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest())
    n_eval = 0
    if eval_fraction > 0 and len(ranked) >= 2:
        n_eval = min(max(round(eval_fraction * len(ranked)), 1), len(ranked) - 1)
    eval_keys = set(ranked[:n_eval])
    train = [pair for pair in pairs if _group_key(pair) not in eval_keys]
    held_out = [pair for pair in pairs if _group_key(pair) in eval_keys]
    return train, held_out


def canonical_order(pairs: Iterable[PreferencePair]) -> list[PreferencePair]:
    """Pairs sorted by their canonical JSON, so training does not depend on query order."""
    return sorted(pairs, key=lambda pair: _canonical(asdict(pair)))


def data_hash(pairs: Iterable[PreferencePair]) -> str:
    """sha256 over the pairs' canonical JSON, independent of order: the training data snapshot id."""
    rows = sorted(_canonical(asdict(pair)) for pair in pairs)
    return hashlib.sha256(_canonical(rows).encode()).hexdigest()
