"""The full label-efficiency simulator: the round loop run by simulated annotators through the web's services.

For each strategy and seed a fresh copy of the source study's pairs is made, without labels,
and a simulated annotator claims (`assignment_next`) and answers (`annotation_submit`) what the
loop serves; the loop's jobs (selection, training) run eagerly in this process, as Celery tasks
with `task_always_eager`, so no broker or worker is needed. The truth stays in an oracle
(`learning.simulate.RevealedLabels` or `GoldLabels`) keyed by pair, asked only for the pair a
claim handed out. After each trained round the version scores the fixed test pairs (the source's
eval-split prompts, never candidates), which gives the curves `learning.simulate.summarise` reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import ModelVersion, Prompt, Query, QueryResponse, Response, Round, Study
from annotate.models.rounds import RoundStatus
from annotate.models.studies import LoopStatus
from annotate.services.items import pair_key
from annotate.services.rounds import round_pause, round_start
from annotate.services.splits import EVAL_FRACTION
from annotate.services.studies import membership_add, study_create, study_delete

SIMULATED_ANNOTATOR = "simulated-annotator-{study}"


@dataclass(frozen=True)
class Pair:
    """A pairwise query of the source study, its responses in canonical order (position 0 first)."""

    prompt_id: int
    first_id: int
    second_id: int
    heldout: bool  # on the source's eval side: a test pair, never a candidate


def source_pairs(source: Study, *, split_of: Study | None = None) -> list[Pair]:
    """Every two-response query of the source, with its prompt's side of `split_of`'s fixed split (the
    source's by default; a hidden import of held-out labels takes the side of the study they are for)."""
    from learning.data import fixed_split

    pairs = []
    queries = Query.objects.filter(study=source, kind="pairwise").select_related("prompt").prefetch_related("query_responses")
    for query in queries.order_by("id"):
        positions = sorted(query.query_responses.all(), key=lambda qr: qr.position)
        if len(positions) != 2:
            continue
        side = fixed_split(query.prompt.external_id, seed=(split_of or source).pk, eval_fraction=EVAL_FRACTION)
        pairs.append(Pair(query.prompt_id, positions[0].response_id, positions[1].response_id, side == "eval"))
    return pairs


def stored_labels(source: Study, pairs: Sequence[Pair]) -> list[float]:
    """+1 when the source's current votes prefer the first response, −1 the second, NaN when they do not say."""
    from annotate.selectors.labels import pairwise_votes, vote_responses

    balance: dict[tuple[int, int], int] = {}
    for vote in pairwise_votes(source).filter(choice__in=["a", "b"]):
        first, second = vote_responses(vote)
        key = (first.pk, second.pk)
        balance[key] = balance.get(key, 0) + (1 if vote.choice == "a" else -1)
    labels = []
    for pair in pairs:
        vote = balance.get((pair.first_id, pair.second_id), 0)
        labels.append(float("nan") if vote == 0 else float(vote > 0) * 2 - 1)
    return labels


def gold_margins(gold: ModelVersion | str, pairs: Sequence[Pair]) -> list[float]:
    """Δ = r(first) − r(second) under the gold reward model: a registered version (its checksum verified
    by the scoring service) or a saved reward model's folder."""
    from annotate.services.scoring import MAX_ITEMS, model_version_score
    from learning.reward.score import score_responses

    responses = Response.objects.select_related("prompt").in_bulk([i for p in pairs for i in (p.first_id, p.second_id)])
    items = [(responses[i].prompt.messages, responses[i].text) for p in pairs for i in (p.first_id, p.second_id)]
    values: list[float] = []
    for start in range(0, len(items), MAX_ITEMS):
        batch = items[start : start + MAX_ITEMS]
        if isinstance(gold, ModelVersion):
            values.extend(model_version_score(version=gold, items=batch).values)
        else:
            values.extend(score_responses(gold, batch))
    return [values[2 * k] - values[2 * k + 1] for k in range(len(pairs))]


@dataclass
class Copy:
    """A fresh study holding the source's candidate pairs without labels: query id → pair index."""

    study: Study
    annotator: object
    pair_of: dict[int, int]
    test_items: list[tuple[list[dict], str, str]]  # (prompt messages, first text, second text) per test pair


@transaction.atomic
def simulation_copy_create(
    *, source: Study, pairs: Sequence[Pair], candidates: Sequence[int], tests: Sequence[int], strategy: str, seed: int,
    round_size: int, training_config: dict,
) -> Copy:  # fmt: skip
    """A study with the source's prompts and responses, one unlabelled query per candidate pair, and an annotator.

    Its prompts keep their pairs' side of the split, so every copy is measured on the same test pairs.
    """
    heldout = {pairs[k].prompt_id: pairs[k].heldout for k in (*candidates, *tests)}
    manager = source.created_by
    study = study_create(
        creator=manager,
        name=f"{source.name} · simulated {strategy} seed {seed}",
        overlap=1,
        round_size=round_size,
        reward_model=source.reward_model,
        selection_strategy=strategy,
        selection_params={"seed": seed},
        training_config={**training_config, "seed": seed},
    )
    prompts: dict[int, Prompt] = {}
    responses: dict[int, Response] = {}
    wanted = {i for k in (*candidates, *tests) for i in (pairs[k].first_id, pairs[k].second_id)}
    for response in Response.objects.select_related("prompt").filter(pk__in=wanted).order_by("pk"):
        old = response.prompt
        if old.pk not in prompts:
            prompts[old.pk] = Prompt.objects.create(
                study=study,
                external_id=old.external_id,
                messages=old.messages,
                metadata=old.metadata,
                split="eval" if heldout[old.pk] else "train",
            )
        responses[response.pk] = Response.objects.create(
            prompt=prompts[old.pk], index=response.index, text=response.text, source=response.source
        )
    pair_of = {}
    for k in candidates:
        first, second = responses[pairs[k].first_id], responses[pairs[k].second_id]
        query = Query.objects.create(
            study=study, prompt=first.prompt, kind="pairwise", key=pair_key("pairwise", [first.pk, second.pk]), asks=["pairwise"]
        )
        QueryResponse.objects.bulk_create(
            [QueryResponse(query=query, response=first, position=0), QueryResponse(query=query, response=second, position=1)]
        )
        pair_of[query.pk] = k
    annotator = get_user_model().objects.create_user(username=SIMULATED_ANNOTATOR.format(study=study.pk))
    membership_add(study=study, username=annotator.username, role="annotator")
    test_items = [
        (responses[pairs[k].first_id].prompt.messages, responses[pairs[k].first_id].text, responses[pairs[k].second_id].text)
        for k in tests
    ]
    return Copy(study, annotator, pair_of, test_items)


@contextlib.contextmanager
def eager_jobs() -> Iterator[None]:
    """Run the loop's Celery tasks in this process as they are queued (on commit), then restore the app."""
    from annotate.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


def answer(copy: Copy, oracle, *, rounds: int) -> int:
    """Claim and answer what the loop serves until `rounds` rounds are trained or the pool is empty.

    The oracle is asked for the one pair each claim handed out. Returns the labels given.
    """
    from annotate.services.assignments import assignment_next
    from annotate.services.feedback import annotation_submit

    given = 0
    while True:
        study = Study.objects.get(pk=copy.study.pk)
        if study.current_round >= rounds and study.loop_status == LoopStatus.RUNNING:
            round_pause(study=study)  # the last round is served and trained on; no next one is selected
        assignment = assignment_next(study=study, annotator=copy.annotator)
        if assignment is None:
            current = Round.objects.filter(study=study).order_by("-number").first()
            if current is not None and current.status == RoundStatus.FAILED:
                raise InvalidInput(f"Round {current.number} of the simulation failed: {current.message}")
            return given
        label = float(oracle.ask([copy.pair_of[assignment.query_id]])[0])
        canonical = "a" if label > 0 else "b"
        shown = canonical if assignment.display_order[0] == 0 else {"a": "b", "b": "a"}[canonical]
        annotation_submit(
            query=assignment.query,
            annotator=copy.annotator,
            client_key=f"simulated-{assignment.pk}",
            answer={"choice": shown, "strength": 2},
        )
        given += 1


def curve_of(copy: Copy, *, strategy: str, seed: int, test_y, test_p):
    """Labels and the trained version's held-out figures after each trained round, as a `learning.simulate.Curve`."""
    import numpy as np

    from annotate.services.scoring import model_version_score
    from learning.simulate import Curve, heldout_figures

    curve = Curve(strategy=strategy, seed=seed)
    trained = Round.objects.filter(study=copy.study, trained_version__isnull=False).select_related("trained_version")
    for round_ in trained.order_by("number"):
        items = [(m, t) for m, first, second in copy.test_items for t in (first, second)]
        values = np.asarray(model_version_score(version=round_.trained_version, items=items).values)
        accuracy, ll = heldout_figures(values[0::2] - values[1::2], test_y, test_p)
        curve.labels.append(round_.labels)
        curve.accuracy.append(accuracy)
        curve.log_likelihood.append(ll)
        curve.chosen_by.append(round_.chosen_by)
    return curve


@transaction.atomic
def simulation_copy_delete(copy: Copy) -> None:
    """Remove a copy: its study (queries, labels, runs, versions, and its files once this commits) and
    then its annotator, whose annotations PROTECT them until the study's are gone."""
    study_delete(study=copy.study)
    copy.annotator.delete()


@dataclass(frozen=True)
class Truth:
    """The source of truth: real labels (NaN: none) or a gold model's margins with its temperature and flips."""

    labels: list[float] | None = None
    margins: list[float] | None = None
    temperature: float = 1.0
    flip: float = 0.0

    def oracle(self, seed: int):
        from learning.simulate import GoldLabels, RevealedLabels

        if self.labels is not None:
            return RevealedLabels(self.labels)
        return GoldLabels(self.margins, temperature=self.temperature, flip=self.flip, seed=seed)


def study_simulate(
    *,
    source: Study,
    truth: Truth,
    pairs: Sequence[Pair],
    strategies: Sequence[str],
    seeds: Sequence[int],
    rounds: int,
    round_size: int,
    training_config: dict,
    keep: bool = False,
    on_oracle: Callable[[object], None] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> list:
    """Run every strategy with every seed on fresh copies of the source; returns their curves.

    Candidates are the train-side pairs the truth can answer; the test pairs are the eval side's
    (real labels: those with one; gold: all, with the gold's probability for the log-likelihood).
    Copies are deleted afterwards unless `keep`.
    """
    import numpy as np

    values = np.asarray(truth.labels if truth.labels is not None else truth.margins, dtype=np.float64)
    known = ~np.isnan(values)
    heldout = np.asarray([p.heldout for p in pairs], dtype=bool)
    candidates = np.flatnonzero(known & ~heldout).tolist()
    tests = np.flatnonzero(known & heldout).tolist()
    if not candidates or not tests:
        raise InvalidInput(
            f"The simulation needs labelled pairs on both sides of the fixed split: {len(candidates)} candidates, "
            f"{len(tests)} test pairs."
        )
    if truth.labels is not None:
        test_y, test_p = values[tests], None
    else:
        test_y, test_p = np.sign(values[tests]), 1.0 / (1.0 + np.exp(-values[tests] / truth.temperature))
    curves = []
    for strategy in strategies:
        for seed in seeds:
            oracle = truth.oracle(seed)
            if on_oracle is not None:
                on_oracle(oracle)
            copy = simulation_copy_create(
                source=source, pairs=pairs, candidates=candidates, tests=tests, strategy=strategy, seed=seed,
                round_size=round_size, training_config=training_config,
            )  # fmt: skip
            try:
                with eager_jobs():
                    round_start(study=copy.study, by=copy.study.created_by)
                    given = answer(copy, oracle, rounds=rounds)
                curves.append(curve_of(copy, strategy=strategy, seed=seed, test_y=test_y, test_p=test_p))
            finally:
                if not keep:
                    simulation_copy_delete(copy)
            if progress is not None:
                progress(f"{strategy} seed {seed}", given)
    return curves
