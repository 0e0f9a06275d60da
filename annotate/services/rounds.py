"""The round loop: select a batch of queries, collect its labels, train, select again, on its own.

A round moves selecting → collecting → training → done (or failed, or exhausted). Each move is a
conditional UPDATE from the state it leaves, so a duplicated job or two last labels submitted at
once move it once. The claim serves the study's current round only (annotate/services/assignments.py);
selection runs in a job, never in an annotator's request.
"""

from __future__ import annotations

import logging

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Query, Round, Study, TrainingRun
from annotate.models.feedback import study_data_query
from annotate.models.items import CHOSEN_ROUND
from annotate.models.rounds import IN_PROGRESS, RoundStatus
from annotate.models.studies import LoopStatus
from annotate.models.training import RunKind, RunStatus
from annotate.rows import fetch_one
from annotate.services.study_status import refuse_if_archived

logger = logging.getLogger(__name__)
MAX_MESSAGE = Round._meta.get_field("message").max_length


def short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def study_labels(study_id: int) -> int:
    """Labels stored in the study (a correction supersedes a label, it does not add one)."""
    return Query.objects.filter(study_id=study_id).aggregate(n=Sum("label_count"))["n"] or 0


def latest_reward_version(study: Study) -> ModelVersion | None:
    return ModelVersion.objects.filter(study=study, kind=RunKind.REWARD).order_by("-version").first()


def last_round(study: Study) -> Round | None:
    return Round.objects.filter(study=study).order_by("-number").first()


def pool_queries(study: Study):
    """The queries a round may choose: never chosen by a round and never labelled.

    Gold queries are not the loop's to choose: they are served beside every round (services.gold).
    """
    return Query.objects.filter(study_data_query(study), round=0, label_count=0)


# The jobs of a round, in order, by the status the round is in while they run: each starts when
# the one before it succeeded, and a step whose config is None is skipped. Selecting ends with
# the picks written (the round collects); training ends with the model recorded and the next
# round opened. A later kind (generation before features, DPO after the reward run) joins here.
STEPS: dict[str, tuple[str, ...]] = {
    RoundStatus.SELECTING: (RunKind.FEATURES, RunKind.SELECTION),
    RoundStatus.TRAINING: (RunKind.REWARD,),
}
STEP_WORDS = {RunKind.FEATURES: "Features", RunKind.SELECTION: "Selection", RunKind.REWARD: "Training"}


def step_config(round_: Round, kind: str) -> dict | None:
    """The config of the round's job of `kind`, or None where the round skips that step."""
    from annotate.services.features import strategy_reads

    if kind == RunKind.FEATURES:  # features and rewards: every model the selection reads runs here, on the gpu queue
        if not any(strategy_reads(round_.strategy, has_version=round_.model_version_id is not None)):
            return None
        return {"model_version": round_.model_version_id}
    if kind == RunKind.SELECTION:
        return {"strategy": round_.strategy, "params": round_.params, "size": round_.size, "seed": round_.number}
    return round_.study.training_config


def step_next(round_: Round, after: str | None, by: AbstractBaseUser | None = None) -> TrainingRun | None:
    """Start the round's first step after `after` (None: its first) that it does not skip; None if none is left.

    Raises InvalidInput where the run cannot start (the caller says what that means for the round).
    """
    from annotate.services.training import training_run_start

    steps = STEPS[round_.status]
    for kind in steps[steps.index(after) + 1 :] if after is not None else steps:
        config = step_config(round_, kind)
        if config is None:
            continue
        with transaction.atomic():
            run = training_run_start(
                study=round_.study, requested_by=by or round_.study.created_by, kind=kind, config=config, for_round=round_
            )
        Round.objects.filter(pk=round_.pk).update(message=short(f"{STEP_WORDS[kind]}: waiting for a worker"))
        return run
    return None


def round_fail(round_: Round, message: str) -> Round:
    """The round failed (a step's job, or its start): the loop waits for a manager, with the message."""
    Round.objects.filter(pk=round_.pk, status__in=IN_PROGRESS).update(
        status=RoundStatus.FAILED, message=short(message), finished_at=timezone.now()
    )
    return Round.objects.get(pk=round_.pk)


def round_open(*, study: Study) -> Round:
    """Record the study's next round and start its first selecting step (queued once the transaction commits).

    Precondition: the study row is locked and no round is in progress. The claim serves the new
    round at once, and so nothing until its queries are written. An empty pool ends the loop.
    """
    previous = last_round(study)
    round_ = Round.objects.create(
        study=study,
        number=(previous.number if previous else 0) + 1,
        strategy=study.selection_strategy,
        params=study.selection_params,
        size=study.round_size,
        model_version=latest_reward_version(study),
        message="Selecting queries",
    )
    study.loop_status, study.current_round = LoopStatus.RUNNING, round_.number
    study.save(update_fields=["loop_status", "current_round"])
    if not pool_queries(study).exists():
        return round_finish_exhausted(round_)
    try:
        step_next(round_, after=None)
    except (InvalidInput, Conflict) as exc:
        return round_fail(round_, f"Selection could not start: {exc.message}")
    return Round.objects.get(pk=round_.pk)


@transaction.atomic
def round_start(*, study: Study, by: AbstractBaseUser | None) -> Round:
    """Start the loop, or force the next round: a round still collecting is ended and trained on now.

    A round being selected has its job queued again (a duplicate delivery runs nothing twice);
    one whose job has finished is moved on; one still training is refused (409): the next round
    follows on its own.
    """
    from annotate.services.training import run_enqueue

    study = Study.objects.select_for_update().get(pk=study.pk)
    refuse_if_archived(study, "starting a round", locked=True)
    current = last_round(study)
    if current is not None and current.status in (RoundStatus.SELECTING, RoundStatus.TRAINING):
        run = current.current_run()
        if run is not None and run.is_finished:  # its worker stopped between the job and moving the loop on
            return rounds_after_run(run_id=run.pk) or current
        if current.status == RoundStatus.TRAINING:
            raise Conflict(f"Round {current.number} is training a reward model; the next round starts when it is done.")
        if run is not None:  # its job may have been lost with a broker: queue it again
            run_enqueue(run)
        return current
    if study.loop_status == LoopStatus.PAUSED:
        study.loop_status = LoopStatus.RUNNING
        study.save(update_fields=["loop_status"])
    if current is not None and current.status == RoundStatus.COLLECTING:
        ended = Round.objects.filter(pk=current.pk, status=RoundStatus.COLLECTING).update(status=RoundStatus.TRAINING)
        if ended:
            # Its queries nobody labelled go back to the pool, for a later round to choose again
            # (one a rejection moved here too: with no label left, no round has chosen it yet).
            Query.objects.filter(study=study, round=current.number, label_count=0).update(
                round=0, chosen_round=None, strategy=Query._meta.get_field("strategy").default, score=None, priority=0
            )
            return round_train(round_id=current.pk, by=by, why=f"Ended by a manager after {study_labels(study.pk)} labels")
    return round_open(study=study)


def query_reopen_in_loop(*, query_id: int, study_id: int) -> bool:
    """After a rejection took a label off the query: while the loop is on, serve it in the current round.

    The claim serves only the current round, and selection chooses only unlabelled queries never
    chosen, so a query of an earlier round (or of none) that lost a label would never be asked
    again. It moves into the current round; `chosen_round` keeps the round that chose it (set on
    its first move only) and `strategy` is kept, so exports still name what chose it. Gold queries
    are served outside rounds and stay. Precondition: inside a transaction; the study row is
    locked here, so a round opening at the same time waits and the query lands in the round the
    claim will serve. Returns whether it moved.
    """
    study = Study.objects.select_for_update(no_key=True).get(pk=study_id)
    if study.loop_status == LoopStatus.OFF:
        return False
    moved = (
        Query.objects.filter(pk=query_id, is_gold=False, label_count__lt=study.overlap)
        .exclude(round=study.current_round)
        .update(chosen_round=CHOSEN_ROUND, round=study.current_round)
    )
    return bool(moved)


@transaction.atomic
def round_pause(*, study: Study) -> Study:
    """Stop the loop from moving on by itself: the current round is still served and trained on, the next not selected."""
    if not Study.objects.filter(pk=study.pk, loop_status=LoopStatus.RUNNING).update(loop_status=LoopStatus.PAUSED):
        study.refresh_from_db()
        raise Conflict(f"The round loop is {study.get_loop_status_display().lower()}; only a running loop can be paused.")
    study.refresh_from_db()
    return study


@transaction.atomic
def round_resume(*, study: Study) -> Study:
    """Let the loop move on again; if it stopped between rounds, select the next one now."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    refuse_if_archived(study, "resuming the round loop", locked=True)
    if study.loop_status != LoopStatus.PAUSED:
        raise Conflict(f"The round loop is {study.get_loop_status_display().lower()}; only a paused loop can be resumed.")
    study.loop_status = LoopStatus.RUNNING
    study.save(update_fields=["loop_status"])
    current = last_round(study)
    if current is None or current.status not in IN_PROGRESS:
        round_open(study=study)
    return study


def selection_inputs(round_: Round, pool: list[Query], version: ModelVersion | None) -> dict:
    """What the round's strategy reads besides the pool: margins and features, where it uses them, from the cache.

    The D-optimal strategies also read the labelled queries: the design starts from what they
    already tell (V = λI + Σ w z zᵀ over them, ALGORITHMS.md §3.1). Features and rewards come from
    the caches the round's features job filled; no model is loaded here. A query whose responses
    are not cached (imported since that job ran) is left out of this round: "pool" is what is
    offered, "left_out" how many were not; they stay in the pool for the next round.
    """
    from annotate.services.features import query_feature_groups, query_margins, query_response_ids, strategy_reads

    reads_features, reads_margins = strategy_reads(round_.strategy, has_version=version is not None)
    if not pool or not (reads_features or reads_margins):
        return {"pool": pool, "left_out": 0}
    labelled = []
    if reads_features:
        labelled = list(Query.objects.filter(study_data_query(round_.study), label_count__gt=0).order_by("id"))
    queries, n = pool + labelled, len(pool)
    ids = query_response_ids(queries)  # read once for both
    margins = query_margins(version=version, queries=queries, response_ids=ids) if reads_margins else None
    groups = (
        query_feature_groups(study=round_.study, queries=queries, version=version, response_ids=ids) if reads_features else None
    )
    cached = [
        (margins is None or bool(np.isfinite(margins[:, i]).all())) and (groups is None or groups[i] is not None)
        for i in range(len(queries))
    ]
    offered = [i for i in range(n) if cached[i]]
    known = [i for i in range(n, len(queries)) if cached[i]]  # a labelled query not cached only leaves the design
    if not offered:
        raise Conflict(
            f"None of the pool's {n} queries has its features or rewards cached; force the round to run its features step again."
        )
    inputs: dict = {"pool": [pool[i] for i in offered], "left_out": n - len(offered)}
    if margins is not None:
        # One model: |Δ|; an ensemble: Var Δ.
        inputs["margins"] = margins[0, offered] if len(margins) == 1 else margins[:, offered]
        if labelled:
            inputs["labelled_margins"] = margins[:, known].mean(axis=0)
    if groups is not None:
        inputs["groups"], inputs["labelled_groups"] = [groups[i] for i in offered], [groups[i] for i in known]
    return inputs


def selection_job_data(run: TrainingRun) -> dict:
    """The `selection` job's data (learning/jobs.py): its round's pool as query ids, with what the strategy reads.

    The model is the one the round recorded when it opened (its features job used the same).
    """
    round_ = Round.objects.select_related("study", "model_version").filter(pk=run.round_id).first()
    if round_ is None:
        raise ValueError(f"selection run {run.pk} belongs to no round")
    pool = list(pool_queries(round_.study).order_by("id"))
    inputs = selection_inputs(round_, pool, round_.model_version)
    return {
        "candidates": [q.pk for q in inputs["pool"]],
        "groups": inputs.get("groups"),
        "labelled_groups": inputs.get("labelled_groups"),
        "margins": inputs.get("margins"),
        "labelled_margins": inputs.get("labelled_margins"),
        "left_out": inputs["left_out"],
    }


def selection_message(round_: Round, picked: int, pool: int, chosen_by: str, left_out: int = 0) -> str:
    words = [f"{picked} queries chosen by {chosen_by}"]
    if round_.size > pool:
        words.append(f"{round_.size} were asked for, but only {pool} were left in the pool")
    if chosen_by != round_.strategy:
        words.append(f"picked at random: {round_.strategy} needs a model and none is trained yet")
    if left_out:
        words.append(f"{left_out} pool queries left out: added after the features step ran, they wait for the next round")
    return short("; ".join(words) + ".")


def round_write_picks(round_: Round, run: TrainingRun) -> Round:
    """Write the selection run's picks with their round, strategy, score and priority, and open the round.

    Precondition: the round row is locked and selecting. A pick that left the pool since (a
    label, an edit) is not written, and the round holds the others; an empty pool ends the loop.
    """
    metrics = run.metrics
    if not metrics.get("pool"):
        return round_finish_exhausted(round_)
    chosen_by, picks = metrics["chosen_by"], list(zip(metrics["picked"], metrics["scores"], strict=True))
    pool, written = pool_queries(round_.study), 0
    for rank, (query_id, score) in enumerate(picks):
        # Priority falls with the rank, so the claim hands out the best picks first.
        pick = {"round": round_.number, "strategy": chosen_by, "score": float(score), "priority": len(picks) - rank}
        written += pool.filter(pk=query_id).update(**pick)
    Round.objects.filter(pk=round_.pk).update(
        status=RoundStatus.COLLECTING,
        chosen_by=chosen_by,
        selected=written,
        progress=1.0,
        selected_at=timezone.now(),
        message=selection_message(round_, written, metrics["pool"], chosen_by, metrics.get("left_out", 0)),
    )
    return Round.objects.get(pk=round_.pk)


@transaction.atomic
def round_finish_exhausted(round_: Round) -> Round:
    """An empty pool: the round holds nothing and the loop ends, saying so."""
    if Round.objects.filter(pk=round_.pk, status=RoundStatus.SELECTING).update(
        status=RoundStatus.EXHAUSTED,
        finished_at=timezone.now(),
        labels=study_labels(round_.study_id),
        message=f"Pool exhausted after round {round_.number - 1}: every query has been chosen or labelled.",
    ):
        Study.objects.filter(pk=round_.study_id).update(loop_status=LoopStatus.EXHAUSTED)
    return Round.objects.get(pk=round_.pk)


@transaction.atomic
def round_check_complete(*, study_id: int, number: int) -> Round | None:
    """After a label to a query of round `number`: if every query of that round reached its overlap,
    start its training. Cheap: one conditional UPDATE; it moves a collecting round once.

    Call it after the label's transaction commits, so that of two last labels stored at once the
    later one sees both.
    """
    row = fetch_one(
        "UPDATE annotate_round SET status = %(training)s WHERE study_id = %(study)s AND number = %(number)s "
        "AND status = %(collecting)s AND NOT EXISTS (SELECT 1 FROM annotate_query q WHERE q.study_id = %(study)s "
        "AND q.round = %(number)s AND q.label_count < (SELECT s.overlap FROM annotate_study s WHERE s.id = %(study)s)) "
        "RETURNING id",
        {"training": RoundStatus.TRAINING, "collecting": RoundStatus.COLLECTING, "study": study_id, "number": number},
    )
    if row is None:
        return None
    return round_train(round_id=row[0], by=None, why=f"Every query reached its overlap; {study_labels(study_id)} labels")


@transaction.atomic
def round_train(*, round_id: int, by: AbstractBaseUser | None, why: str) -> Round:
    """Start the round's training steps: a reward model on everything labelled so far, with the study's training config.

    Precondition: the round was just moved to training. If the run cannot start (too few labels
    of the kind it needs), the round closes without a model, saying why, and the loop moves on.
    """
    round_ = Round.objects.select_related("study").get(pk=round_id)
    labels = study_labels(round_.study_id)
    try:
        with transaction.atomic():
            step_next(round_, after=None, by=by)
    except (InvalidInput, Conflict) as exc:  # Conflict: archived (by then its loop is paused)
        Round.objects.filter(pk=round_id).update(
            status=RoundStatus.DONE,
            labels=labels,
            finished_at=timezone.now(),
            message=short(f"{why}. Not trained: {exc.message}"),
        )
        advance(round_.study_id)
        return Round.objects.get(pk=round_id)
    Round.objects.filter(pk=round_id).update(labels=labels, progress=0.0, message=short(f"{why}. Training a reward model"))
    return Round.objects.get(pk=round_id)


def advance(study_id: int) -> Round | None:
    """Open the next round unless the loop is paused (or was stopped)."""
    study = Study.objects.select_for_update().get(pk=study_id)
    current = last_round(study)
    if study.loop_status != LoopStatus.RUNNING or (current is not None and current.status in IN_PROGRESS):
        return None
    return round_open(study=study)


def round_record_training(round_: Round) -> Round:
    """The round's training steps are done: record the reward model it trained, close it, and open the next round."""
    version = ModelVersion.objects.filter(run__round=round_, kind=RunKind.REWARD).order_by("-version").first()
    metrics = version.metrics if version is not None else {}
    Round.objects.filter(pk=round_.pk).update(
        status=RoundStatus.DONE,
        trained_version=version,
        heldout_accuracy=metrics.get("heldout_accuracy"),
        heldout_accuracy_low=metrics.get("heldout_accuracy_ci95_low"),
        heldout_accuracy_high=metrics.get("heldout_accuracy_ci95_high"),
        progress=1.0,
        finished_at=timezone.now(),
        message=short(f"Trained reward model v{version.version}" if version else "Trained"),
    )
    advance(round_.study_id)
    return Round.objects.get(pk=round_.pk)


@transaction.atomic
def rounds_after_run(*, run_id: int) -> Round | None:
    """When a round's job has finished: start the round's next step, or end the steps of its status.

    Selecting ends with the picks written; training with the model recorded and the next round
    opened. A no-op for a run that is no round's, not finished, or not its round's current step
    (a second delivery). A failed or cancelled job fails the round with the job's error, and the
    loop waits for a manager to force the next round.
    """
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None or not run.is_finished or run.round_id is None:
        return None
    round_ = Round.objects.select_for_update().select_related("study").filter(pk=run.round_id, status__in=IN_PROGRESS).first()
    if round_ is None or round_.current_run().pk != run.pk or run.kind not in STEPS.get(round_.status, ()):
        return None
    if run.status != RunStatus.SUCCEEDED:
        return round_fail(round_, f"{STEP_WORDS[run.kind]} failed: {run.error or 'the run was cancelled'}")
    try:
        if step_next(round_, after=run.kind) is not None:
            return Round.objects.get(pk=round_.pk)
    except (InvalidInput, Conflict) as exc:  # Conflict: archived meanwhile
        return round_fail(round_, f"{STEP_WORDS[run.kind]} done, but the next step could not start: {exc.message}")
    if round_.status == RoundStatus.SELECTING:
        return round_write_picks(round_, run)
    return round_record_training(round_)
