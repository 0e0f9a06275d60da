"""Reads of the round loop: where it stands in words, its history, and the accuracy-against-labels plot."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, Sum
from django.template.defaultfilters import floatformat

from annotate.charts import Point, line_chart
from annotate.models import Query, Round, Study, TrainingRun
from annotate.models.rounds import RoundStatus
from annotate.models.studies import LoopStatus
from annotate.models.training import RunKind


@dataclass
class LoopState:
    """What the dashboard and the workspace say about the loop."""

    line: str  # "Round 3 of random: 14 / 20 labels"
    note: str = ""  # the current round's own message (capped, picked at random, failed because...)
    preparing: bool = False  # the next round is being selected or trained for: annotators wait
    progress: float | None = None  # 0..1 of that preparation, where known
    can_start: bool = True
    can_pause: bool = False
    can_resume: bool = False
    start_label: str = "Start rounds"
    rounds: list[Round] = field(default_factory=list)


def round_labels(round_: Round, overlap: int) -> tuple[int, int]:
    """(labels given, labels wanted) in the round's own queries, with those a rejection moved into it."""
    counts = Query.objects.filter(study_id=round_.study_id, round=round_.number).aggregate(
        given=Sum("label_count"), moved=Count("id", filter=Q(chosen_round__isnull=False))
    )
    return counts["given"] or 0, (round_.selected + counts["moved"]) * overlap


def loop_state(study: Study) -> LoopState:
    """The loop in words, for the study's current state; one round's figures at most are counted."""
    steps = Prefetch("runs", queryset=TrainingRun.objects.order_by("id"), to_attr="steps")
    rounds = list(Round.objects.filter(study=study).select_related("model_version").prefetch_related(steps).order_by("number"))
    current = rounds[-1] if rounds else None
    paused = study.loop_status == LoopStatus.PAUSED
    if current is None:
        strategy = study.get_selection_strategy_display().lower()
        return LoopState(line=f"Rounds have not started: the first will be chosen by the {strategy} strategy.")
    state = LoopState(line="", note=current.message, rounds=rounds, can_pause=study.loop_status == LoopStatus.RUNNING)
    state.can_resume = paused
    n = current.number
    run = current.current_run() if current.status in (RoundStatus.SELECTING, RoundStatus.TRAINING) else None
    if current.status == RoundStatus.SELECTING:
        doing = "computing features" if run is not None and run.kind == RunKind.FEATURES else "selecting"
        state.line, state.preparing, state.start_label = f"Preparing round {n}: {doing}…", True, "Queue its job again"
        state.progress = run.progress if run is not None else None
    elif current.status == RoundStatus.COLLECTING:
        given, wanted = round_labels(current, study.overlap)
        state.line = f"Round {n} of {current.chosen_by}: {given} / {wanted} labels"
        state.start_label = "Force next round"
    elif current.status == RoundStatus.TRAINING:
        state.line, state.preparing = f"Preparing round {n + 1}: training a reward model…", True
        state.progress = run.progress if run is not None else None
        # A run that finished without the loop moving on (its worker stopped in between) can be moved on by hand.
        state.can_start, state.start_label = run is not None and run.is_finished, "Move on"
    elif current.status == RoundStatus.EXHAUSTED:
        state.line, state.start_label = f"Pool exhausted after round {n - 1}", "Try again"
    elif current.status == RoundStatus.FAILED:
        state.line, state.start_label = f"Round {n} failed; the loop waits", "Force next round"
    else:
        state.line, state.start_label = f"Round {n} done", "Start next round"
    if paused:
        state.line += " · paused: the next round waits for Resume"
    return state


def accuracy_plot(rounds: list[Round]) -> dict:
    """Held-out accuracy against labels (`charts.line_chart`): a point per measured round, with its 95% interval.

    Empty until a round has a measured accuracy. The y axis runs from 0.5 (chance for a pair) to 1,
    or lower if an accuracy falls under chance.
    """
    points = [
        Point(
            x=r.labels,
            y=r.heldout_accuracy,
            text=f"Round {r.number}: {floatformat(r.heldout_accuracy, 3)} at {r.labels} labels",
            low=r.heldout_accuracy_low,
            high=r.heldout_accuracy_high,
        )
        for r in rounds
        if r.heldout_accuracy is not None and r.labels is not None
    ]
    title = "Held-out accuracy of the model trained after each round, against labels, with its 95% interval"
    return line_chart(points, title=title, y_floor=0.5, x_unit="labels")
