"""The workspace form as an `answer` for `annotation_submit`, and the posted draft shown again after an error.

Field names the workspace template and its scripts post:

- `choice` (a, b, tie, both_bad; a/b as shown left/right) and `strength` (1-3), for pairwise;
- `ranking`: JSON, a list of groups of response ids, best first (kept up to date by ranking.js);
  or, when `rank_mode` is `cannot`, `cannot_rank`: the reason;
- `spans`: JSON, [{response, start, end, category, note}] in code points (kept by spans.js);
- `critique_response` (a response id), `critique-<id>` and `revision-<id>`: the editor starts as
  the response itself, so a revision equal to it (line endings aside) is no revision;
- `rating-<id>-<aspect>`: 1-5 for every response shown and every aspect;
- `active_ms`: the client's count of active time on task.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.http import QueryDict

from annotate.errors import InvalidInput
from annotate.models import Query, Response
from annotate.models.studies import FeedbackKind
from annotate.numbers import json_loads
from annotate.services.feedback import MAX_ACTIVE_MS

DEFAULT_STRENGTH = 2


def asks_of(query: Query) -> list[str]:
    return list(query.asks or [query.kind])


def normalise_newlines(text: str) -> str:
    """Browsers post a textarea's line breaks as CRLF; the stored text and the service compare with LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_strength(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_STRENGTH
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"strength must be 1, 2 or 3, not {raw!r}.", field="strength") from None


def parse_json_list(raw: str | None, name: str):
    if raw is None or not raw.strip():
        return None
    try:
        value = json_loads(raw)
    except ValueError:  # not JSON, or a number it cannot store
        raise InvalidInput(f"{name} is not valid JSON.", field=name) from None
    if not isinstance(value, list):
        raise InvalidInput(f"{name} must be a JSON list.", field=name)
    return value


def parse_active_ms(raw: str | None) -> int | None:
    """The client's active time, or None: a missing or garbled count never blocks a submit."""
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if 0 <= value <= MAX_ACTIVE_MS else None


def parse_response_id(raw: str | None, responses: dict[int, Response], name: str) -> int:
    try:
        response_id = int(raw or "")
    except ValueError:
        response_id = None
    if response_id not in responses:
        raise InvalidInput("Choose which response the critique is about.", field=name)
    return response_id


def answer_from_post(query: Query, responses: list[Response], post: QueryDict) -> dict:
    """The `answer` dict for the parts this query asks for; only those fields are read.

    `responses` are the query's responses (any order). Values are passed on as posted where the
    service checks them; this only decodes JSON, whole numbers and the unchanged revision.
    """
    asks = asks_of(query)
    by_id = {r.pk: r for r in responses}
    answer: dict = {}
    if FeedbackKind.PAIRWISE in asks:
        answer["choice"] = post.get("choice", "")
        answer["strength"] = parse_strength(post.get("strength"))
    if FeedbackKind.RANKING in asks:
        if post.get("rank_mode") == "cannot":
            answer["cannot_rank"] = post.get("cannot_rank", "")
        else:
            ranking = parse_json_list(post.get("ranking"), "ranking")
            if ranking is None:
                raise InvalidInput("Rank the responses, or say why you cannot.", field="ranking")
            answer["ranking"] = ranking
    if FeedbackKind.SPANS in asks:
        answer["spans"] = parse_json_list(post.get("spans"), "spans") or []
    if FeedbackKind.CRITIQUE in asks:
        default = str(responses[0].pk) if len(responses) == 1 else None
        response_id = parse_response_id(post.get("critique_response") or default, by_id, "critique_response")
        critique = {"response": response_id, "critique": normalise_newlines(post.get(f"critique-{response_id}", ""))}
        revision = post.get(f"revision-{response_id}")
        if revision is not None:
            revision = normalise_newlines(revision)
            if revision.strip() != normalise_newlines(by_id[response_id].text).strip():
                critique["revision"] = revision
        answer["critiques"] = [critique]
    if FeedbackKind.RATINGS in asks:
        ratings = []
        for response in responses:
            for aspect in query.study.rating_aspects:
                raw = post.get(f"rating-{response.pk}-{aspect['key']}")
                if raw in (None, ""):
                    continue  # the service names the first one missing
                try:
                    value = int(raw)
                except ValueError:
                    raise InvalidInput(f"A rating must be 1 to 5, not {raw!r}.", field="ratings") from None
                ratings.append({"response": response.pk, "aspect": aspect["key"], "value": value})
        answer["ratings"] = ratings
    return answer


@dataclass
class Draft:
    """What the annotator had posted, to show again beside an error instead of losing their work."""

    query_id: int
    choice: str = ""
    strength: int = DEFAULT_STRENGTH
    rank_mode: str = "rank"
    ranking: str = ""
    cannot_rank: str = ""
    spans: str = ""
    critique_response: int | None = None
    critiques: dict[int, str] = field(default_factory=dict)
    revisions: dict[int, str] = field(default_factory=dict)
    ratings: dict[int, dict[str, str]] = field(default_factory=dict)
    active_ms: int = 0


def draft_from_answer(query_id: int, answer: dict) -> Draft:
    """A stored answer (`selectors.labels.answer_of`) as the draft the form starts from, to change it."""
    critiques = answer.get("critiques") or []
    ratings: dict[int, dict[str, str]] = {}
    for rating in answer.get("ratings") or []:
        ratings.setdefault(rating["response"], {})[rating["aspect"]] = str(rating["value"])
    return Draft(
        query_id=query_id,
        choice=answer.get("choice", ""),
        strength=answer.get("strength", DEFAULT_STRENGTH),
        rank_mode="cannot" if "cannot_rank" in answer else "rank",
        ranking=json.dumps(answer["ranking"]) if "ranking" in answer else "",
        cannot_rank=answer.get("cannot_rank", ""),
        spans=json.dumps(answer["spans"]) if answer.get("spans") else "",
        critique_response=critiques[0]["response"] if critiques else None,
        critiques={c["response"]: c["critique"] for c in critiques},
        revisions={c["response"]: c["revision"] for c in critiques if "revision" in c},
        ratings=ratings,
    )


def draft_from_post(query: Query, responses: list[Response], post: QueryDict) -> Draft:
    try:
        strength = int(post.get("strength") or DEFAULT_STRENGTH)
    except ValueError:
        strength = DEFAULT_STRENGTH
    try:
        critique_response = int(post.get("critique_response") or "")
    except ValueError:
        critique_response = None
    return Draft(
        query_id=query.pk,
        choice=post.get("choice", ""),
        strength=strength,
        rank_mode="cannot" if post.get("rank_mode") == "cannot" else "rank",
        ranking=post.get("ranking", ""),
        cannot_rank=post.get("cannot_rank", ""),
        spans=post.get("spans", ""),
        critique_response=critique_response,
        critiques={r.pk: post[f"critique-{r.pk}"] for r in responses if f"critique-{r.pk}" in post},
        revisions={r.pk: normalise_newlines(post[f"revision-{r.pk}"]) for r in responses if f"revision-{r.pk}" in post},
        ratings={
            r.pk: {a["key"]: post.get(f"rating-{r.pk}-{a['key']}", "") for a in query.study.rating_aspects} for r in responses
        },
        active_ms=parse_active_ms(post.get("active_ms")) or 0,
    )


RESPONSE_IDS = re.compile(r"\b(responses?|response\(s\)) ((?:\d+)(?:, \d+)*)")
# The service names fields as the API posts them; the workspace has one critique and a list of spans.
FIELD_NAMES = [
    (re.compile(r"\bcritiques\[\d+\]\.revision\b"), "the revision"),
    (re.compile(r"\bcritiques\[\d+\]\.critique\b"), "the critique"),
    (re.compile(r"\bspans\[(\d+)\]\.(\w+)"), lambda m: f"span {int(m.group(1)) + 1}'s {m.group(2)}"),
    (re.compile(r"\bspans\[(\d+)\]"), lambda m: f"span {int(m.group(1)) + 1}"),
    (re.compile(r"\bratings\[\d+\]\.value\b"), "a rating"),
    (re.compile(r"\bcannot_rank\b"), "the reason you cannot rank"),
]


def with_letters(message: str, letters: dict[int, str]) -> str:
    """The service names responses by id; the annotator knows them by the letters on screen."""

    def replace(match: re.Match) -> str:
        ids = [int(i) for i in match.group(2).split(", ")]
        if not all(i in letters for i in ids):
            return match.group(0)
        noun = "responses" if len(ids) > 1 else "response"
        return f"{noun} {', '.join(letters[i] for i in ids)}"

    return RESPONSE_IDS.sub(replace, message)


def friendly(message: str, letters: dict[int, str]) -> str:
    """A service error as the annotator sees the screen: letters for responses, words for field paths."""
    message = with_letters(message, letters)
    starts_with_field = any(pattern.match(message) for pattern, _ in FIELD_NAMES)
    for pattern, words in FIELD_NAMES:
        message = pattern.sub(words, message)
    if message.startswith("the revision is empty"):
        return "The revision is empty: edit the response, or reset it to the original to send no revision."
    return message[:1].upper() + message[1:] if starts_with_field else message
