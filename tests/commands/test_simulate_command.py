"""The full simulator: the round loop run by simulated annotators through the web's services, per strategy and seed."""

import csv
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import PairwiseChoice, Study
from annotate.services import simulation
from learning.simulate import RevealedLabels
from tests.factories import BOTH_SIDES_PROMPTS, UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db(transaction=True)  # the loop moves on when labels commit
FAST = ["--set", "epochs=1", "--set", "max_length=32", "--set", "batch_size=4"]


@pytest.fixture
def labelled(tiny_encoder_dir):
    """A study of BOTH_SIDES_PROMPTS two-answer prompts, each pair labelled (the correct sum, listed first, preferred)."""
    annotator = UserFactory()
    study = make_study(annotators=[annotator], reward_model=str(tiny_encoder_dir), round_size=4)
    make_items(study, n_prompts=BOTH_SIDES_PROMPTS)
    label_preferring_first_response(study, annotator)
    return study


def test_a_two_round_simulation_writes_a_csv_row_per_strategy_and_label_count_and_a_png(labelled, tmp_path):
    studies = Study.objects.count()
    out = tmp_path / "out"
    options = ["--strategies", "random,d_optimal", "--seeds", "1", "--rounds", "2", "--out", str(out)]
    call_command("simulate", str(labelled.pk), *options, *FAST)
    rows = list(csv.DictReader((out / "simulation.csv").open()))
    assert [(r["strategy"], r["labels"], r["seeds"]) for r in rows] == [
        ("random", "4", "1"),
        ("random", "8", "1"),
        ("d_optimal", "4", "1"),
        ("d_optimal", "8", "1"),
    ]
    assert all(0 <= float(r["accuracy"]) <= 1 and float(r["log_likelihood"]) < 0 for r in rows)
    assert (out / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Study.objects.count() == studies  # the copies are gone


def test_the_oracle_reveals_only_labels_of_queries_the_loop_handed_out_each_once(labelled, monkeypatch):
    from annotate.services import assignments

    handed, revealed = [], []
    real_next, real_ask = assignments.assignment_next, RevealedLabels.ask

    def next_spy(**kwargs):
        assignment = real_next(**kwargs)
        if assignment is not None:
            first, second = (qr.response for qr in assignment.query.query_responses.order_by("position"))
            handed.append((assignment.query.prompt.external_id, first.text, second.text))
        return assignment

    def ask_spy(self, indices):
        revealed.extend(int(i) for i in indices)
        return real_ask(self, indices)

    monkeypatch.setattr(assignments, "assignment_next", next_spy)
    monkeypatch.setattr(RevealedLabels, "ask", ask_spy)
    pairs = simulation.source_pairs(labelled)
    truth = simulation.Truth(labels=simulation.stored_labels(labelled, pairs))
    simulation.study_simulate(
        source=labelled, truth=truth, pairs=pairs, strategies=["random"], seeds=[0], rounds=2, round_size=3,
        training_config={"epochs": 1, "max_length": 32, "batch_size": 4, "min_pairs": 3},
    )  # fmt: skip
    assert len(revealed) == 6 and len(set(revealed)) == 6
    texts = {}
    for pair in pairs:
        first, second = (labelled.prompts.get(pk=pair.prompt_id).responses.get(pk=i) for i in (pair.first_id, pair.second_id))
        texts[first.prompt.external_id, first.text, second.text] = pairs.index(pair)
    assert sorted(revealed) == sorted(texts[h] for h in set(handed))
    assert not any(pairs[i].heldout for i in revealed)  # test pairs are never candidates


def test_a_pair_without_a_label_is_no_candidate(labelled, monkeypatch):
    pairs = simulation.source_pairs(labelled)
    labels = simulation.stored_labels(labelled, pairs)
    unlabelled = [i for i, p in enumerate(pairs) if not p.heldout][:3]
    for i in unlabelled:
        labels[i] = float("nan")
    served = []
    real_create = simulation.simulation_copy_create

    def create_spy(**kwargs):
        served.extend(kwargs["candidates"])
        return real_create(**kwargs)

    monkeypatch.setattr(simulation, "simulation_copy_create", create_spy)
    simulation.study_simulate(
        source=labelled, truth=simulation.Truth(labels=labels), pairs=pairs, strategies=["random"], seeds=[0], rounds=1,
        round_size=2, training_config={"epochs": 1, "max_length": 32, "batch_size": 4, "min_pairs": 2},
    )  # fmt: skip
    assert served and not set(served) & set(unlabelled)


def test_gold_labels_follow_the_gold_models_preference_on_a_strongly_separated_set(labelled):
    pairs = simulation.source_pairs(labelled)
    # The gold prefers the second response of two pairs in three. Which 8 pairs the rounds choose
    # hangs on the source study's id (it seeds the fixed split), so a "b" must be likely among any
    # 8: all of them among the other third is a chance of 1 in 6561, against 1 in 26 the other way round.
    margins = [-40.0 if k % 3 else 40.0 for k in range(len(pairs))]
    truth = simulation.Truth(margins=margins, temperature=1.0, flip=0.0)
    simulation.study_simulate(
        source=labelled, truth=truth, pairs=pairs, strategies=["random"], seeds=[0], rounds=2, round_size=4, keep=True,
        training_config={"epochs": 1, "max_length": 32, "batch_size": 4, "min_pairs": 4},
    )  # fmt: skip
    copy = Study.objects.get(name__contains="simulated random seed 0")
    wanted = {}
    for k, pair in enumerate(pairs):
        first = labelled.prompts.get(pk=pair.prompt_id).responses.get(pk=pair.first_id)
        wanted[first.prompt.external_id, first.text] = "a" if margins[k] > 0 else "b"
    votes = PairwiseChoice.objects.filter(annotation__query__study=copy).select_related("annotation__query__prompt")
    seen = {}
    for vote in votes:
        first = vote.annotation.query.query_responses.get(position=0).response
        seen[vote.annotation.query.prompt.external_id, first.text] = vote.choice
    assert len(seen) == 8 and "b" in seen.values()
    assert seen == {key: wanted[key] for key in seen}


def test_an_unknown_strategy_is_refused_by_name_and_nothing_is_left_behind(labelled, tmp_path):
    studies = Study.objects.count()
    with pytest.raises(CommandError, match="Unknown strategy 'clever'"):
        call_command("simulate", str(labelled.pk), "--strategies", "random,clever", "--out", str(tmp_path / "o"))
    assert Study.objects.count() == studies and not (tmp_path / "o").exists()


def test_a_missing_labels_file_is_named(labelled, tmp_path):
    with pytest.raises(CommandError, match="No labels file .*nowhere.jsonl"):
        call_command("simulate", str(labelled.pk), "--labels", str(tmp_path / "nowhere.jsonl"), "--format", "trl")


def test_a_labels_file_whose_prompts_are_not_the_studys_is_refused_and_its_import_removed(labelled, tmp_path):
    studies = Study.objects.count()
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"id": "elsewhere-1", "prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."}) + "\n")
    with pytest.raises(CommandError, match="1 prompt.* of other.jsonl are not prompts of study .* 'elsewhere-1'"):
        call_command("simulate", str(labelled.pk), "--labels", str(path), "--format", "trl", "--out", str(tmp_path / "o"))
    assert Study.objects.count() == studies


def trl_rows(n: int) -> str:
    """TRL rows for make_items' prompts (same ids), the correct sum chosen."""
    rows = [
        {"id": f"p{i}", "prompt": f"Question {i}: what is {i} + {i}?", "chosen": f"{2 * i}", "rejected": f"{2 * i + 1}"}
        for i in range(n)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_held_out_labels_from_a_trl_file_drive_a_study_that_has_none(tiny_encoder_dir, tmp_path):
    study = make_study(reward_model=str(tiny_encoder_dir), round_size=4)
    make_items(study, n_prompts=BOTH_SIDES_PROMPTS)
    studies = Study.objects.count()
    with pytest.raises(CommandError, match="needs labelled pairs on both sides of the fixed split: 0 candidates"):
        call_command("simulate", str(study.pk), "--strategies", "random", "--out", str(tmp_path / "none"))
    path = tmp_path / "labels.jsonl"
    path.write_text(trl_rows(BOTH_SIDES_PROMPTS))
    out = tmp_path / "out"
    options = ["--labels", str(path), "--format", "trl", "--strategies", "random", "--seeds", "1", "--rounds", "2"]
    call_command("simulate", str(study.pk), *options, "--out", str(out), *FAST)
    rows = list(csv.DictReader((out / "simulation.csv").open()))
    assert [(r["strategy"], r["labels"]) for r in rows] == [("random", "4"), ("random", "8")]
    assert Study.objects.count() == studies and not PairwiseChoice.objects.exists()  # the hidden import is gone too


def test_gold_mode_from_a_registered_reward_model_version(labelled, tmp_path):
    from annotate.models import ModelVersion

    call_command("train", str(labelled.pk), "--inline", *FAST)
    gold = ModelVersion.objects.get(study=labelled)
    out = tmp_path / "out"
    options = ["--gold", str(gold.pk), "--temperature", "0.5", "--flip", "0.1", "--strategies", "uncertainty", "--seeds", "2"]
    call_command("simulate", str(labelled.pk), *options, "--rounds", "2", "--out", str(out), *FAST)
    rows = list(csv.DictReader((out / "simulation.csv").open()))
    assert [(r["strategy"], r["labels"], r["seeds"]) for r in rows] == [("uncertainty", "4", "2"), ("uncertainty", "8", "2")]
    assert float(rows[0]["accuracy_low"]) <= float(rows[0]["accuracy"]) <= float(rows[0]["accuracy_high"])


def test_bad_gold_settings_are_named(labelled):
    with pytest.raises(CommandError, match="--gold 'v9' is neither a model version id nor a model folder"):
        call_command("simulate", str(labelled.pk), "--gold", "v9")
    with pytest.raises(CommandError, match="--flip in"):
        call_command("simulate", str(labelled.pk), "--gold", "1", "--flip", "0.7")


def test_held_out_labels_from_a_fine_grained_rlhf_file(tiny_encoder_dir, tmp_path):
    from annotate.services.importers import study_file_import
    from tests.qa_feedback import qa_file, qa_record

    data = qa_file(*(qa_record(question=f"When did café {i} open?") for i in range(BOTH_SIDES_PROMPTS)))
    study = make_study(reward_model=str(tiny_encoder_dir), round_size=4)
    study_file_import(study=study, format="fgrlhf", file=data)
    path = tmp_path / "qa.json"
    path.write_bytes(data)
    out = tmp_path / "out"
    options = ["--labels", str(path), "--format", "fgrlhf", "--strategies", "random", "--seeds", "1", "--rounds", "1"]
    call_command("simulate", str(study.pk), *options, "--out", str(out), *FAST)
    rows = list(csv.DictReader((out / "simulation.csv").open()))
    assert [(r["strategy"], r["labels"]) for r in rows] == [("random", "4")]
