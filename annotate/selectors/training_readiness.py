"""Whether each kind of training run can start now, counting what its trainer will use, not labels.

A run queued without enough usable examples fails on the worker at once (NotEnoughLabels). The
dashboard asks here which kinds to offer, and `training_run_start` refuses the others with the
same reason, so neither a button nor the API queues a run that cannot train.

The counts follow the trainers in `learning/reward/`: Bradley-Terry leaves ties out (Davidson
keeps them), both-bad says nothing about order, a ranking needs two groups (split into pairs it
counts one per cross-group pair), a span example needs a response with text, and a rating
example a rating on one of the study's aspects. Counted in the database: the web process never
loads the labels' texts or torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from annotate.models import Annotation, QueryResponse, Study
from annotate.models.feedback import study_data_query, study_label
from annotate.models.studies import FeedbackKind
from annotate.models.training import RunKind
from annotate.selectors.labels import pairwise_votes, rankings, ratings
from learning.jobs import JOB_KINDS, MODEL_KINDS

# Each kind's config key for its minimum; the default is read from the kind's torch-free config
# class (learning/jobs.py). Every trainer also wants at least 2.
MINIMUM_KEYS = {RunKind.REWARD: "min_pairs", RunKind.SPAN_REWARD: "min_examples", RunKind.RATING_REWARD: "min_examples"}
FLOOR = 2


def default(kind: str, key: str):
    """The trainer's default for `key`: its config class's."""
    return getattr(JOB_KINDS[kind].config, key)


@dataclass(frozen=True)
class Readiness:
    """One run kind: the examples its trainer would use now, how many it needs, and what was left out."""

    kind: str
    label: str
    usable: int
    needed: int
    unit: str  # what is counted, plural: "usable pairs", "rated responses"
    left_out: tuple[str, ...] = ()  # e.g. ("5 ties", "1 both-bad answer")

    @property
    def can_run(self) -> bool:
        return self.usable >= self.needed

    @property
    def counts(self) -> str:
        """'has 3 (5 ties left out)'."""
        left_out = f" ({', '.join(self.left_out)} left out)" if self.left_out else ""
        return f"has {self.usable}{left_out}"

    @property
    def reason(self) -> str:
        """Why it cannot run ('needs 8 usable pairs; has 3 (5 ties left out)'); empty when it can."""
        return "" if self.can_run else f"needs {self.needed} {self.unit}; {self.counts}"


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def needed_for(kind: str, config: dict) -> int:
    key = MINIMUM_KEYS[kind]
    value = config.get(key, default(kind, key))
    return max(value if isinstance(value, int) else default(kind, key), FLOOR)


def cross_group_pairs(groups: list[list[int]]) -> int:
    sizes = [len(group) for group in groups if group]
    return sum(sizes[i] * sizes[j] for i in range(len(sizes)) for j in range(i + 1, len(sizes)))


def reward_readiness(study: Study, config: dict) -> Readiness:
    loss = config.get("loss", default(RunKind.REWARD, "loss"))
    split = config.get("ranking_loss", default(RunKind.REWARD, "ranking_loss")) == "split_pairs"
    by_choice = dict(pairwise_votes(study).prefetch_related(None).order_by().values_list("choice").annotate(n=Count("id")))
    usable = by_choice.get("a", 0) + by_choice.get("b", 0)
    left_out = []
    ties = by_choice.get("tie", 0)
    if loss == "davidson":
        usable += ties
    elif ties:
        left_out.append(plural(ties, "tie", "ties"))
    if by_choice.get("both_bad"):
        left_out.append(plural(by_choice["both_bad"], "both-bad answer", "both-bad answers"))
    flat = cannot_rank = 0
    for groups, reason in rankings(study).prefetch_related(None).order_by().values_list("groups", "cannot_rank_reason"):
        if reason:
            cannot_rank += 1
        elif len([group for group in groups or [] if group]) < 2:
            flat += 1
        else:
            usable += cross_group_pairs(groups) if split else 1
    if flat:
        left_out.append(plural(flat, "ranking with everything tied", "rankings with everything tied"))
    if cannot_rank:
        left_out.append(plural(cannot_rank, "cannot-rank answer", "cannot-rank answers"))
    if FeedbackKind.RANKING in (study.feedback_kinds or []) and not split:
        unit = "usable rankings"
    elif FeedbackKind.PAIRWISE in (study.feedback_kinds or [FeedbackKind.PAIRWISE]) or split:
        unit = "usable pairs"
    else:
        unit = "usable pairs or rankings"
    return Readiness(RunKind.REWARD, RunKind.REWARD.label, usable, needed_for(RunKind.REWARD, config), unit, tuple(left_out))


def span_readiness(study: Study, config: dict) -> Readiness:
    # Every response shown in an annotation that asked for spans is an example (no span = clean),
    # unless it has no text to segment.
    with_text = dict(
        QueryResponse.objects.filter(study_data_query(study, "query__"))
        .exclude(response__text__regex=r"^\s*$")
        .order_by()
        .values_list("query_id")
        .annotate(n=Count("id"))
    )
    usable = sum(
        with_text.get(query_id, 0)
        for query_id, asks in Annotation.objects.filter(study_label(study)).values_list("query_id", "query__asks")
        if FeedbackKind.SPANS in (asks or [])
    )
    kind = RunKind.SPAN_REWARD
    return Readiness(kind, kind.label, usable, needed_for(kind, config), "labelled responses")


def rating_readiness(study: Study, config: dict) -> Readiness:
    aspects = [aspect["key"] for aspect in study.rating_aspects or []]
    rated = ratings(study).filter(aspect__in=aspects).order_by().values("annotation_id", "response_id").distinct()
    kind = RunKind.RATING_REWARD
    return Readiness(kind, kind.label, rated.count(), needed_for(kind, config), "rated responses")


READINESS = {
    RunKind.REWARD: reward_readiness,
    RunKind.SPAN_REWARD: span_readiness,
    RunKind.RATING_REWARD: rating_readiness,
}


def run_readiness(study: Study, kind: str, config: dict | None = None) -> Readiness:
    """Whether a run of `kind` with `config` (checked keys; defaults where absent) could train now."""
    return READINESS[kind](study, config or {})


def study_readiness(study: Study) -> list[Readiness]:
    """Every kind that trains a model, with its default config, in the table's order: what the dashboard offers."""
    return [run_readiness(study, kind) for kind in MODEL_KINDS]
