"""The round loop: select a batch of queries, collect its labels, train, select again, on its own.

A round moves selecting → collecting → training → done (or failed, or exhausted). Each move is a
conditional UPDATE from the state it leaves, so a duplicated job or two last labels submitted at
once move it once. The claim serves the study's current round only (annotate/services/assignments.py);
selection runs in a job, never in an annotator's request.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.errors import Conflict, InvalidInput
from annotate.models import ModelVersion, Query, Round, Study, TrainingRun
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


def round_open(*, study: Study) -> Round:
    """Record the study's next round and queue its selection job once the transaction commits.

    Precondition: the study row is locked and no round is in progress. The claim serves the new
    round at once, and so nothing until its queries are written.
    """
    from annotate.tasks import select_round

    previous = last_round(study)
    round_ = Round.objects.create(
        study=study,
        number=(previous.number if previous else 0) + 1,
        strategy=study.selection_strategy,
        params=study.selection_params,
        size=study.round_size,
        message="Selecting queries",
    )
    study.loop_status, study.current_round = LoopStatus.RUNNING, round_.number
    study.save(update_fields=["loop_status", "current_round"])
    select_round.delay_on_commit(round_.pk)
    return round_


@transaction.atomic
def round_start(*, study: Study, by: AbstractBaseUser | None) -> Round:
    """Start the loop, or force the next round: a round still collecting is ended and trained on now.

    A round being selected has its job queued again; one whose run has finished is moved on; one
    still training is refused (409): the next round follows on its own.
    """
    from annotate.tasks import select_round

    study = Study.objects.select_for_update().get(pk=study.pk)
    refuse_if_archived(study, "starting a round")
    current = last_round(study)
    if current is not None and current.status == RoundStatus.SELECTING:
        # Its job may have been lost with a worker or a broker: queue it again (a duplicate writes nothing).
        select_round.delay_on_commit(current.pk)
        return current
    if current is not None and current.status == RoundStatus.TRAINING:
        run = TrainingRun.objects.filter(pk=current.run_id).first()
        if run is not None and run.is_finished:  # its worker stopped between training and moving the loop on
            return rounds_after_run(run_id=run.pk) or current
        raise Conflict(f"Round {current.number} is training a reward model; the next round starts when it is done.")
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
        .update(chosen_round=Coalesce("chosen_round", "round"), round=study.current_round)
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
    refuse_if_archived(study, "resuming the round loop")
    if study.loop_status != LoopStatus.PAUSED:
        raise Conflict(f"The round loop is {study.get_loop_status_display().lower()}; only a paused loop can be resumed.")
    study.loop_status = LoopStatus.RUNNING
    study.save(update_fields=["loop_status"])
    current = last_round(study)
    if current is None or current.status not in IN_PROGRESS:
        round_open(study=study)
    return study


def selection_inputs(round_: Round, pool: list[Query], version: ModelVersion | None) -> dict:
    """What the round's strategy reads besides the pool's size: margins and features, where it uses them.

    The D-optimal strategies also read the labelled queries: the design starts from what they
    already tell (V = λI + Σ w z zᵀ over them, ALGORITHMS.md §3.1).
    """
    from annotate.services.features import query_feature_groups, query_margins

    d_optimal = round_.strategy.startswith("d_optimal")
    labelled = []
    if d_optimal:
        labelled = list(Query.objects.filter(study=round_.study, label_count__gt=0).select_related("prompt").order_by("id"))
    queries, n = pool + labelled, len(pool)
    inputs: dict = {}
    if version is not None and round_.strategy != "random":
        margins = query_margins(version=version, queries=queries)
        inputs["margins"] = margins[0, :n] if len(margins) == 1 else margins[:, :n]  # one model: |Δ|; an ensemble: Var Δ
        if labelled:
            inputs["labelled_margins"] = margins[:, n:].mean(axis=0)
    if d_optimal:
        groups = query_feature_groups(study=round_.study, queries=queries, version=version)
        inputs["groups"], inputs["labelled_groups"] = groups[:n], groups[n:]
    return inputs


def choose(round_: Round, pool: list[Query], version: ModelVersion | None):
    """(selection, chosen_by) for the round under its strategy and parameters."""
    import numpy as np

    from learning.select import strategy_params
    from learning.select.choose import choose_queries
    from learning.select.d_optimal import Design, greedy_d_optimal_kwise

    params = strategy_params(round_.strategy, round_.params)
    inputs = selection_inputs(round_, pool, version)
    groups, known = inputs.pop("groups", None), inputs.pop("labelled_groups", None)
    if groups is not None and any(len(g) > 1 for g in groups + known):  # rankings: a query adds all its pairs
        lam = getattr(params, "lam", 1.0)
        design = Design.prior(groups[0].shape[1], lam=lam, labelled=np.vstack(known)) if known else None
        return greedy_d_optimal_kwise(groups, round_.size, design=design, lam=lam), round_.strategy
    if groups is not None:
        inputs["features"] = np.stack([g[0] for g in groups])
        if known:
            inputs["labelled_features"] = np.stack([g[0] for g in known])
    return choose_queries(params, round_.size, n=len(pool), seed=round_.number, **inputs)


def round_select(*, round_id: int) -> Round:
    """The selection job: choose the round's queries from the pool and open the round for labelling.

    The pool is every query not chosen by a round yet and never labelled. The picks are written
    with their round, strategy, score and priority (best first) in one transaction, only if the
    round is still selecting, so a duplicated job writes nothing. A round larger than the pool is
    cut to it, and says so; an empty pool ends the loop. A failure is recorded on the round, and
    the loop waits for a manager.
    """
    round_ = Round.objects.select_related("study").get(pk=round_id)
    if round_.status != RoundStatus.SELECTING:
        return round_
    # Gold queries are not the loop's to choose: they are served beside every round (services.gold).
    pool = list(
        Query.objects.filter(study=round_.study, round=0, label_count=0, is_gold=False).select_related("prompt").order_by("id")
    )
    if not pool:
        return round_finish_exhausted(round_)
    version = latest_reward_version(round_.study)
    try:
        selection, chosen_by = choose(round_, pool, version)
    except Exception as exc:  # noqa: BLE001 - every failure lands on the round, with its message
        logger.exception("selection of round %s failed", round_id)
        Round.objects.filter(pk=round_id, status=RoundStatus.SELECTING).update(
            status=RoundStatus.FAILED, message=short(f"Selection failed: {type(exc).__name__}: {exc}"), finished_at=timezone.now()
        )
        return Round.objects.get(pk=round_id)
    return round_write_picks(round_, pool, selection, chosen_by, version)


def selection_message(round_: Round, picked: int, pool: int, chosen_by: str) -> str:
    words = [f"{picked} queries chosen by {chosen_by}"]
    if round_.size > pool:
        words.append(f"{round_.size} were asked for, but only {pool} were left in the pool")
    if chosen_by != round_.strategy:
        words.append(f"picked at random: {round_.strategy} needs a model and none is trained yet")
    return short("; ".join(words) + ".")


@transaction.atomic
def round_write_picks(round_: Round, pool: list[Query], selection, chosen_by: str, version: ModelVersion | None) -> Round:
    """Write the picks and open the round, unless another delivery of the job did it first."""
    if not Round.objects.select_for_update().filter(pk=round_.pk, status=RoundStatus.SELECTING).exists():
        return Round.objects.get(pk=round_.pk)
    picked = len(selection.indices)
    for rank, (index, score) in enumerate(zip(selection.indices.tolist(), selection.scores.tolist(), strict=True)):
        # Priority falls with the rank, so the claim hands out the best picks first.
        Query.objects.filter(pk=pool[index].pk, round=0).update(
            round=round_.number, strategy=chosen_by, score=float(score), priority=picked - rank
        )
    Round.objects.filter(pk=round_.pk).update(
        status=RoundStatus.COLLECTING,
        chosen_by=chosen_by,
        model_version=version,
        selected=picked,
        progress=1.0,
        selected_at=timezone.now(),
        message=selection_message(round_, picked, len(pool), chosen_by),
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
    """Train a reward model on everything labelled so far, with the study's training config.

    Precondition: the round was just moved to training. If the run cannot start (too few labels
    of the kind it needs), the round closes without a model, saying why, and the loop moves on.
    """
    from annotate.services.training import training_run_start

    round_ = Round.objects.select_related("study").get(pk=round_id)
    study = round_.study
    labels = study_labels(study.pk)
    try:
        with transaction.atomic():
            run = training_run_start(
                study=study, requested_by=by or study.created_by, kind=RunKind.REWARD, config=study.training_config
            )
    except (InvalidInput, Conflict) as exc:  # Conflict: archived (by then its loop is paused)
        Round.objects.filter(pk=round_id).update(
            status=RoundStatus.DONE,
            labels=labels,
            finished_at=timezone.now(),
            message=short(f"{why}. Not trained: {exc.message}"),
        )
        advance(study.pk)
        return Round.objects.get(pk=round_id)
    Round.objects.filter(pk=round_id).update(
        run=run, labels=labels, progress=0.0, message=short(f"{why}. Training a reward model")
    )
    return Round.objects.get(pk=round_id)


def advance(study_id: int) -> Round | None:
    """Open the next round unless the loop is paused (or was stopped)."""
    study = Study.objects.select_for_update().get(pk=study_id)
    current = last_round(study)
    if study.loop_status != LoopStatus.RUNNING or (current is not None and current.status in IN_PROGRESS):
        return None
    return round_open(study=study)


@transaction.atomic
def rounds_after_run(*, run_id: int) -> Round | None:
    """When a round's training run has finished: record what it trained and select the next round.

    A no-op for a run that is not a round's, or not finished. A failed or cancelled run fails the
    round with the run's error, and the loop waits for a manager to force the next round.
    """
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None or not run.is_finished:
        return None
    round_ = Round.objects.select_for_update().filter(run_id=run_id, status=RoundStatus.TRAINING).first()
    if round_ is None:
        return None
    now = timezone.now()
    if run.status != RunStatus.SUCCEEDED:
        reason = run.error or "the run was cancelled"
        Round.objects.filter(pk=round_.pk).update(
            status=RoundStatus.FAILED, finished_at=now, message=short(f"Training failed: {reason}")
        )
        return Round.objects.get(pk=round_.pk)
    version = ModelVersion.objects.filter(run_id=run_id).first()
    metrics = version.metrics if version is not None else run.metrics
    Round.objects.filter(pk=round_.pk).update(
        status=RoundStatus.DONE,
        trained_version=version,
        heldout_accuracy=metrics.get("heldout_accuracy"),
        heldout_accuracy_low=metrics.get("heldout_accuracy_ci95_low"),
        heldout_accuracy_high=metrics.get("heldout_accuracy_ci95_high"),
        progress=1.0,
        finished_at=now,
        message=short(f"Trained reward model v{version.version}" if version else "Trained"),
    )
    advance(round_.study_id)
    return Round.objects.get(pk=round_.pk)
