"""Plain feedback data and its conversions; imported by the web process, so no torch here.

Four kinds of labelled example feed the trainers in ``learning.reward``:

- ``PreferencePair``: one pairwise judgement (optionally a tie);
- ``RankingExample``: K responses ordered best first, ties as unordered groups;
- ``SpanExample``: character spans of a response marked with error categories;
- ``RatingExample``: 1..5 ratings of a response on named aspects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

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
    # A tie: neither response was better, so chosen/rejected order carries no meaning. Only the
    # Davidson loss learns from ties; Bradley–Terry training drops (and counts) them.
    tie: bool = False


@dataclass(frozen=True)
class RankingExample:
    """K responses to one prompt, ranked: ``groups`` lists indices into ``responses``, best first.

    Responses in one group are tied (an unordered group). A response may be left out of every
    group (unranked), but none may appear twice. ``[[2], [0, 1]]`` means 2 beat both 0 and 1,
    which tied with each other.
    """

    prompt: Messages
    responses: list[str]
    groups: list[list[int]]
    group: str = ""
    annotator: str = ""

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for members in self.groups:
            for index in members:
                if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.responses):
                    raise ValueError(f"ranking index {index!r} is not a position in {len(self.responses)} responses")
                if index in seen:
                    raise ValueError(f"ranking index {index} appears more than once in {self.groups}")
                seen.add(index)

    @property
    def ordered_groups(self) -> list[list[int]]:
        """The non-empty groups, best first."""
        return [list(members) for members in self.groups if members]


@dataclass(frozen=True)
class SpanExample:
    """Error spans on one response: ``spans`` are ``(start, end, category)`` character ranges.

    ``end`` is exclusive, as in Python slices. Response-level labels that belong to no span
    (e.g. "missing information") have no place here.
    """

    prompt: Messages | str
    response: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    group: str = ""

    def __post_init__(self) -> None:
        for start, end, category in self.spans:
            if not 0 <= start <= end <= len(self.response):
                raise ValueError(
                    f"span ({start}, {end}, {category!r}) lies outside a response of {len(self.response)} characters"
                )


@dataclass(frozen=True)
class RatingExample:
    """Ratings of one response on named aspects, each an integer from 1 (worst) to 5 (best).

    An example may rate only some of the aspects a model is trained on; the others are simply
    not part of its loss.
    """

    prompt: Messages | str
    response: str
    ratings: dict[str, int]
    group: str = ""

    def __post_init__(self) -> None:
        for aspect, value in self.ratings.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                raise ValueError(f"rating of {aspect!r} must be an integer from 1 to 5, got {value!r}")


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


def render_prompt(messages: Sequence[dict] | str) -> str:
    """Render chat messages as plain ``role: content`` lines, for encoders without a template.

    A plain string is taken as the prompt text itself.
    """
    if isinstance(messages, str):
        return messages
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def ranking_to_pairs(groups: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Split a ranking (groups of indices, best first) into its (better, worse) index pairs.

    Every member of a group beats every member of each later group; members of the same group
    are tied and give no pair. This is the split-into-pairs alternative to Plackett–Luce.
    """
    ordered = [list(members) for members in groups if members]
    pairs = []
    for position, better_group in enumerate(ordered):
        for worse_group in ordered[position + 1 :]:
            pairs.extend((better, worse) for better in better_group for worse in worse_group)
    return pairs


def ranking_example_to_pairs(example: RankingExample) -> list[PreferencePair]:
    """The ranking's ``ranking_to_pairs`` as PreferencePairs (prompt, group and annotator kept)."""
    return [
        PreferencePair(
            prompt=example.prompt,
            chosen=example.responses[better],
            rejected=example.responses[worse],
            group=example.group,
            annotator=example.annotator,
        )
        for better, worse in ranking_to_pairs(example.groups)
    ]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class Grouped(Protocol):
    """Anything with a prompt and a group id: every example type above."""

    @property
    def prompt(self) -> Any: ...

    @property
    def group(self) -> str: ...


Item = TypeVar("Item", bound=Grouped)


def group_key(item: Grouped) -> str:
    """The split key of an example: its group id, else a hash of its prompt."""
    # An example without a prompt id is grouped by its prompt text, so one prompt still never
    # straddles the split.
    if item.group:
        return "group:" + item.group
    return "prompt:" + hashlib.sha256(_canonical(item.prompt).encode()).hexdigest()


def held_out_keys(
    examples: Iterable[Grouped], *, eval_fraction: float, seed: int, eval_groups: Collection[str] | None = None
) -> frozenset[str]:
    """The ``group_key``s of the held-out side.

    With ``eval_groups`` (a study's fixed evaluation split: group ids), exactly those groups,
    whatever the examples, the kind of model or the loss. Otherwise the groups of ``examples``
    are ranked by a seeded hash of their key and the first ``eval_fraction`` of them (by count
    of groups) are held out: the result depends only on the set of groups and the seed, not on
    input order. With two or more groups and ``eval_fraction > 0`` each side gets at least one
    group; with a single group everything is train. Pass every example, before any is dropped
    (ties under Bradley–Terry), so that models trained on the same labels share a split.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction!r}")
    if eval_groups is not None:
        return frozenset("group:" + group for group in eval_groups)
    keys = sorted({group_key(example) for example in examples})
    ranked = sorted(keys, key=lambda key: hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest())
    n_eval = 0
    if eval_fraction > 0 and len(ranked) >= 2:
        n_eval = min(max(round(eval_fraction * len(ranked)), 1), len(ranked) - 1)
    return frozenset(ranked[:n_eval])


def fixed_split(key: str, *, seed: int, eval_fraction: float) -> str:
    """ "eval" or "train" for one prompt of a study, from a seeded hash of its key.

    Each prompt's side depends on nothing but its own key, so prompts that arrive later get
    theirs without moving anyone else's; about ``eval_fraction`` of prompts land in eval.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction!r}")
    position = int(hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()[:15], 16) / 16**15
    return "eval" if position < eval_fraction else "train"


def partition_by_group(items: Sequence[Item], held_out: Collection[str]) -> tuple[list[Item], list[Item]]:
    """(train, eval): items whose ``group_key`` is in ``held_out`` go to eval; order is kept."""
    train = [item for item in items if group_key(item) not in held_out]
    evaluation = [item for item in items if group_key(item) in held_out]
    return train, evaluation


def split_by_group(pairs: Sequence[Item], *, eval_fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Split examples into (train, eval) so that every group lies wholly on one side (``held_out_keys``).

    Works for any mix of the example types above: a prompt's pairs and rankings land together.
    """
    return partition_by_group(pairs, held_out_keys(pairs, eval_fraction=eval_fraction, seed=seed))


def _hash_row(item: Any) -> str:
    """Canonical JSON of one example, tagged with its type.

    A PreferencePair that is not a tie hashes exactly as it did before ``tie`` existed, so data
    hashes recorded by earlier versions still match the same labels.
    """
    row = asdict(item)
    if isinstance(item, PreferencePair):
        if not row["tie"]:
            del row["tie"]
        return _canonical(row)
    return _canonical({"kind": type(item).__name__, **row})


def canonical_order(pairs: Iterable[Item]) -> list[Item]:
    """Examples sorted by their canonical JSON, so training does not depend on query order."""
    return sorted(pairs, key=_hash_row)


def data_hash(pairs: Iterable[Any]) -> str:
    """sha256 over the examples' canonical JSON, independent of order: the data snapshot id.

    Accepts any mix of PreferencePair, RankingExample, SpanExample and RatingExample; every
    field of every example (ties, groups, spans, ratings) is covered.
    """
    rows = sorted(_hash_row(item) for item in pairs)
    return hashlib.sha256(_canonical(rows).encode()).hexdigest()
