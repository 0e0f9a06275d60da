"""learning.reward.train beyond plain BT: Davidson ties, rankings, ensembles and LoRA on a tiny BERT."""

import math
import random

import pytest
import torch
from safetensors.torch import load_file

from learning.artifacts import load_artifact
from learning.data import PreferencePair, RankingExample, data_hash
from learning.reward.evaluate import evaluate_pairs
from learning.reward.model import load_reward_members
from learning.reward.score import score_responses
from learning.reward.train import NotEnoughLabels, RewardTrainConfig, train_reward_model

GOOD = ["helpful", "clear", "correct", "kind", "accurate", "thorough", "polite", "precise"]
BAD = ["rude", "wrong", "vague", "useless", "sloppy", "false", "confusing", "lazy"]
QUERY_WEIGHT = "backbone.encoder.layer.0.attention.self.query.weight"


def _config(base_model, **overrides) -> RewardTrainConfig:
    settings = {
        "base_model": str(base_model),
        "epochs": 5,
        "batch_size": 8,
        "learning_rate": 5e-3,
        "head_learning_rate": 1e-2,
        "eval_fraction": 0.25,
        "max_length": 64,
    }
    return RewardTrainConfig(**{**settings, **overrides})


def _prompt(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Tell me about topic {i}"}]


def _ties(n_prompts: int, seed: int = 1) -> list[PreferencePair]:
    """Two equally good responses per prompt, labelled as a tie."""
    rng = random.Random(seed)
    return [
        PreferencePair(
            prompt=[{"role": "user", "content": f"Tell me about {topic} ({i})"}],
            chosen="about it: " + " ".join(rng.sample(GOOD, 3)),
            rejected="about it: " + " ".join(rng.sample(GOOD, 3)),
            group=f"prompt-{i}",
            annotator=f"annotator-{i % 3}",
            tie=True,
        )
        for i, topic in enumerate(["cats", "rivers", "taxes", "python", "music", "bread"] * 4)
    ]


def _rankings(n_prompts: int = 24, seed: int = 0) -> list[RankingExample]:
    """Four responses per prompt: two good ones tied on top, two bad ones tied below."""
    rng = random.Random(seed)
    rankings = []
    for i in range(n_prompts):
        good = ["about it: " + " ".join(rng.sample(GOOD, 3)) for _ in range(2)]
        bad = ["about it: " + " ".join(rng.sample(BAD, 3)) for _ in range(2)]
        rankings.append(
            RankingExample(
                prompt=_prompt(i),
                responses=[bad[0], good[0], bad[1], good[1]],
                groups=[[1, 3], [0, 2]],
                group=f"prompt-{i}",
                annotator=f"annotator-{i % 2}",
            )
        )
    return rankings


def _weights_moved(tiny_bert_dir, result, prefix: str = "") -> bool:
    initial = load_file(str(tiny_bert_dir / "model.safetensors"))["encoder.layer.0.attention.self.query.weight"]
    trained = load_artifact(result.artifact_dir).load_tensors()[prefix + QUERY_WEIGHT]
    return not torch.allclose(initial, trained)


def test_davidson_learns_from_ties_and_bt_drops_them(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=24) + _ties(24)
    davidson = train_reward_model(pairs, config=_config(tiny_bert_dir, loss="davidson"), output_dir=tmp_path / "d")
    metrics = davidson.metrics
    assert metrics["n_ties"] == 24 and metrics["ties_dropped"] == 0
    assert metrics["heldout_accuracy"] >= 0.9
    # Three outcomes: chance is log(1/3) = -1.10; ties at Δ ≈ 0 and confident wins do far better.
    assert metrics["heldout_davidson_log_likelihood"] > -0.7
    assert 0 < metrics["tie_nu"] and metrics["tie_nu"] != pytest.approx(1.0, abs=1e-3)  # learned, not the start value
    assert _weights_moved(tiny_bert_dir, davidson)

    bt = train_reward_model(pairs, config=_config(tiny_bert_dir, epochs=1), output_dir=tmp_path / "b")
    assert bt.metrics["ties_dropped"] == 24 and bt.metrics["n_ties"] == 0
    assert bt.metrics["n_train"] + bt.metrics["n_eval"] == 48


def test_plackett_luce_and_split_pairs_learn_from_rankings(tiny_bert_dir, tmp_path):
    rankings = _rankings()
    listwise = train_reward_model([], rankings=rankings, config=_config(tiny_bert_dir), output_dir=tmp_path / "pl")
    assert listwise.metrics["n_rankings"] == 24 and listwise.metrics["n_train"] + listwise.metrics["n_eval"] == 24
    assert listwise.metrics["n_eval_comparisons"] == 4 * listwise.metrics["n_eval"]  # 2 good x 2 bad each
    assert listwise.metrics["heldout_accuracy"] >= 0.9
    assert _weights_moved(tiny_bert_dir, listwise)

    split = train_reward_model(
        [], rankings=rankings, config=_config(tiny_bert_dir, ranking_loss="split_pairs", epochs=2), output_dir=tmp_path / "split"
    )
    assert split.metrics["ranking_pairs"] == 24 * 4 and split.metrics["n_rankings"] == 0
    assert split.metrics["heldout_accuracy"] >= 0.9
    assert split.data_hash == listwise.data_hash  # the same labels, whatever the loss


def test_a_ranking_with_everything_tied_is_dropped_and_counted(tiny_bert_dir, make_pairs, tmp_path):
    all_tied = RankingExample(prompt=_prompt(0), responses=["a", "b"], groups=[[0, 1]])
    with pytest.raises(NotEnoughLabels, match=r"has 6; 1 rankings had fewer than two groups"):
        train_reward_model(make_pairs(n_prompts=3), rankings=[all_tied], config=_config(tiny_bert_dir), output_dir=tmp_path / "x")


def test_not_enough_labels_says_how_many_ties_bt_dropped(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=2) + _ties(6)[:6]
    with pytest.raises(NotEnoughLabels, match=r"at least 8 .* has 4; 6 ties were dropped because loss='bt'"):
        train_reward_model(pairs, config=_config(tiny_bert_dir), output_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_unknown_choice_of_loss_is_rejected_before_training(tiny_bert_dir, make_pairs, tmp_path):
    with pytest.raises(ValueError, match="loss must be one of"):
        train_reward_model(make_pairs(), config=_config(tiny_bert_dir, loss="hinge"), output_dir=tmp_path / "x")


@pytest.fixture(scope="module")
def bootstrap_ensemble(tiny_bert_dir, make_pairs, tmp_path_factory):
    pairs = make_pairs(n_prompts=24)
    config = _config(tiny_bert_dir, ensemble_size=3, ensemble_mode="bootstrap", epochs=4)
    reports: list[dict] = []
    result = train_reward_model(pairs, config=config, output_dir=tmp_path_factory.mktemp("ens") / "rm", progress=reports.append)
    return result, reports


def test_an_ensemble_trains_distinct_members_into_one_artifact(bootstrap_ensemble, tiny_bert_dir):
    result, reports = bootstrap_ensemble
    metrics = result.metrics
    assert metrics["ensemble_size"] == 3 and len(metrics["member_heldout_accuracy"]) == 3
    assert metrics["heldout_accuracy"] >= 0.9
    assert {r["member"] for r in reports} == {1, 2, 3} and reports[-1]["step"] == reports[-1]["total_steps"]
    _, members, artifact = load_reward_members(result.artifact_dir)
    assert len(members) == 3 and artifact.metadata["ensemble_size"] == 3
    heads = [m.head.weight.detach() for m in members]
    assert not torch.allclose(heads[0], heads[1]) and not torch.allclose(heads[1], heads[2])
    assert _weights_moved(tiny_bert_dir, result, prefix="members.0.")


def test_ensemble_scores_aggregate_members_as_mean_wco_and_uwo(bootstrap_ensemble):
    result, _ = bootstrap_ensemble
    prompt = _prompt(99)
    items = [(prompt, "about it: kind clear helpful"), (prompt, "about it: lazy rude wrong"), (prompt, "about it")]
    mean, members = score_responses(result.artifact_dir, items, return_members=True)
    wco = score_responses(result.artifact_dir, items, aggregate="wco")
    uwo = score_responses(result.artifact_dir, items, aggregate="uwo")
    assert len(members) == 3 and all(len(row) == 3 for row in members)
    assert all(len(set(row)) == 3 for row in members)  # the members disagree a little
    for i, row in enumerate(members):
        assert mean[i] == pytest.approx(sum(row) / 3)
        assert wco[i] == pytest.approx(min(row)) and wco[i] <= mean[i]
        variance = sum((r - mean[i]) ** 2 for r in row) / 3
        assert uwo[i] == pytest.approx(mean[i] - variance) and uwo[i] <= mean[i]
    assert mean[0] > mean[1]


def test_seed_ensembles_differ_by_seed_only(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=8)
    result = train_reward_model(pairs, config=_config(tiny_bert_dir, ensemble_size=2, epochs=1), output_dir=tmp_path / "rm")
    _, members, _ = load_reward_members(result.artifact_dir)
    assert not torch.allclose(members[0].head.weight, members[1].head.weight)
    single = train_reward_model(pairs, config=_config(tiny_bert_dir, epochs=1), output_dir=tmp_path / "one")
    _, (alone,), _ = load_reward_members(single.artifact_dir)
    assert torch.allclose(alone.head.weight, members[0].head.weight)  # member 0 is the single model


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_lora_training_learns_and_saves_merged_plain_weights(tiny_bert_dir, make_pairs, tmp_path):
    config = _config(tiny_bert_dir, lora=True, lora_r=4, lora_learning_rate=1e-2, epochs=6)
    result = train_reward_model(make_pairs(n_prompts=24), config=config, output_dir=tmp_path / "rm")
    assert result.metrics["heldout_accuracy"] >= 0.75
    tensors = load_artifact(result.artifact_dir).load_tensors()
    assert not any("lora" in name for name in tensors)
    assert _weights_moved(tiny_bert_dir, result)  # the adapters were merged into the backbone
    prompt = _prompt(5)
    good, bad = score_responses(result.artifact_dir, [(prompt, "about it: kind clear"), (prompt, "about it: rude lazy")])
    assert good > bad and math.isfinite(good)


def _tie_only_prompts(n: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            prompt=[{"role": "user", "content": f"tie {i}"}],
            chosen="about it: helpful clear",
            rejected="about it: kind polite",
            group=f"tie-{i}",
            tie=True,
        )
        for i in range(n)
    ]


def test_bt_and_davidson_versions_of_one_study_are_scored_on_the_same_pairs(tiny_bert_dir, make_pairs, tmp_path):
    # Prompts whose only labels are ties vanish from BT's data; the split must not notice.
    pairs = make_pairs(n_prompts=24) + _tie_only_prompts(12)
    bt = train_reward_model(pairs, config=_config(tiny_bert_dir, epochs=1, seed=1), output_dir=tmp_path / "b")
    davidson = train_reward_model(
        pairs, config=_config(tiny_bert_dir, epochs=1, seed=1, loss="davidson"), output_dir=tmp_path / "d"
    )
    assert bt.metrics["n_eval_comparisons"] == davidson.metrics["n_eval_comparisons"] == 14
    agreement = {name: total for name, (_, total) in bt.metrics["per_annotator_agreement"].items()}
    assert agreement == {name: total for name, (_, total) in davidson.metrics["per_annotator_agreement"].items()}


def test_a_studys_eval_groups_fix_the_held_out_prompts(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=12)
    eval_groups = ["prompt-0", "prompt-5", "prompt-11"]
    result = train_reward_model(
        pairs, config=_config(tiny_bert_dir, epochs=1), output_dir=tmp_path / "rm", eval_groups=eval_groups
    )
    held_out = [p for p in pairs if p.group in eval_groups]
    assert result.metrics["n_eval"] == len(held_out) == 6
    assert load_artifact(result.artifact_dir).metadata["eval_data_hash"] == data_hash(held_out)


def test_training_needs_labels_outside_the_evaluation_split(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=6)
    with pytest.raises(NotEnoughLabels, match="no labels outside the evaluation split"):
        train_reward_model(pairs, config=_config(tiny_bert_dir), output_dir=tmp_path / "x", eval_groups=[p.group for p in pairs])


def _weights(result) -> dict:
    return load_artifact(result.artifact_dir).load_tensors()


def test_strength_margins_are_used_only_when_asked_and_evaluated_as_trained(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=12)  # margins of 0, 1/3 and 1
    assert len({p.margin for p in pairs}) == 3
    no_margins = [PreferencePair(**{**p.__dict__, "margin": 0.0}) for p in pairs]
    eval_groups = ["prompt-1", "prompt-4", "prompt-8"]
    config = _config(tiny_bert_dir, epochs=1)

    default = train_reward_model(pairs, config=config, output_dir=tmp_path / "a", eval_groups=eval_groups)
    zeroed = train_reward_model(no_margins, config=config, output_dir=tmp_path / "b", eval_groups=eval_groups)
    assert all(torch.equal(value, _weights(zeroed)[name]) for name, value in _weights(default).items())
    assert default.metrics["strength_margin"] is False

    margin_config = _config(tiny_bert_dir, epochs=1, strength_margin=True)
    with_margin = train_reward_model(pairs, config=margin_config, output_dir=tmp_path / "c", eval_groups=eval_groups)
    assert not torch.equal(_weights(with_margin)[QUERY_WEIGHT], _weights(default)[QUERY_WEIGHT])

    held_out = [p for p in pairs if p.group in eval_groups]
    chosen = score_responses(with_margin.artifact_dir, [(p.prompt, p.chosen) for p in held_out])
    rejected = score_responses(with_margin.artifact_dir, [(p.prompt, p.rejected) for p in held_out])
    differences = [c - r for c, r in zip(chosen, rejected, strict=True)]
    expected = evaluate_pairs(differences, margins=[p.margin for p in held_out])
    assert with_margin.metrics["heldout_log_likelihood"] == pytest.approx(expected["log_likelihood"], abs=1e-4)
    assert with_margin.metrics["heldout_ece"] == pytest.approx(expected["ece"], abs=1e-4)
    assert with_margin.metrics["heldout_log_likelihood"] != pytest.approx(evaluate_pairs(differences)["log_likelihood"], abs=1e-3)
