"""learning.reward: training a BT reward model, saving it, and scoring with it."""

import pytest
import torch
from safetensors.torch import load_file

from learning.artifacts import load_artifact
from learning.errors import TrainingStopped
from learning.models import ModelNotFoundError
from learning.reward import common as common_module
from learning.reward.score import score_responses
from learning.reward.train import NotEnoughLabels, RewardTrainConfig, train_reward_model


def _tiny_config(base_model, **overrides) -> RewardTrainConfig:
    settings = {
        "base_model": str(base_model),
        "epochs": 6,
        "batch_size": 8,
        "learning_rate": 5e-3,
        "head_learning_rate": 1e-2,
        "eval_fraction": 0.25,
        "max_length": 64,
        "seed": 0,
    }
    return RewardTrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def trained_tiny(tiny_bert_dir, make_pairs, tmp_path_factory):
    """One tiny reward model trained on 48 separable pairs, shared by the tests that read it."""
    pairs = make_pairs(n_prompts=24, pairs_per_prompt=2)
    reports: list[dict] = []
    output_dir = tmp_path_factory.mktemp("trained") / "rm"
    result = train_reward_model(pairs, config=_tiny_config(tiny_bert_dir), output_dir=output_dir, progress=reports.append)
    return pairs, reports, result


def test_training_a_tiny_bert_on_separable_pairs_learns_and_moves_the_weights(tiny_bert_dir, trained_tiny):
    pairs, reports, result = trained_tiny

    metrics = result.metrics
    assert metrics["n_train"] + metrics["n_eval"] == len(pairs) and metrics["n_eval"] == 12
    assert metrics["heldout_accuracy"] >= 0.9
    assert metrics["train_accuracy"] >= 0.9
    assert metrics["heldout_log_likelihood"] > -0.3  # chance is log(1/2) = -0.69
    assert metrics["train_loss"] < 0.3

    first, last = reports[0], reports[-1]
    assert set(first) >= {"step", "total_steps", "loss", "eta_seconds"}
    assert last["step"] == last["total_steps"] == 30 and last["eta_seconds"] == 0
    assert last["loss"] < first["loss"]

    initial = load_file(str(tiny_bert_dir / "model.safetensors"))
    trained = load_artifact(result.artifact_dir, expected_checksum=result.checksum).load_tensors()
    name = "encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(initial[name], trained["backbone." + name])
    assert {"weights.safetensors", "metadata.json", "checksums.json"} <= set(result.files)

    metadata = load_artifact(result.artifact_dir).metadata
    assert metadata["data_hash"] == result.data_hash and metadata["seed"] == 0
    assert metadata["config"]["base_model"] == str(tiny_bert_dir)
    assert metadata["metrics"]["heldout_accuracy"] == metrics["heldout_accuracy"]


def test_training_twice_with_the_same_seed_gives_the_same_artifact(tiny_bert_dir, make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=8)
    config = _tiny_config(tiny_bert_dir, epochs=1)
    first = train_reward_model(pairs, config=config, output_dir=tmp_path / "a")
    second = train_reward_model(list(reversed(pairs)), config=config, output_dir=tmp_path / "b")
    assert first.checksum == second.checksum
    assert first.data_hash == second.data_hash


def test_scores_rank_a_good_response_above_a_bad_one(trained_tiny):
    _, _, result = trained_tiny
    prompt = [{"role": "user", "content": "Tell me about dogs"}]
    scores = score_responses(
        result.artifact_dir,
        [(prompt, "about dogs: kind clear helpful"), (prompt, "about dogs: lazy rude wrong")],
        batch_size=1,
    )
    assert len(scores) == 2 and scores[0] > scores[1]
    assert score_responses(result.artifact_dir, []) == []


def test_too_few_pairs_raise_not_enough_labels_with_both_counts(tiny_bert_dir, make_pairs, tmp_path):
    with pytest.raises(NotEnoughLabels, match=r"at least 8 .* has 6"):
        train_reward_model(make_pairs(n_prompts=3), config=_tiny_config(tiny_bert_dir), output_dir=tmp_path / "rm")
    assert not (tmp_path / "rm").exists()


def test_an_unknown_base_model_fails_before_any_training(make_pairs, tmp_path, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the encoder was loaded before the model name was checked")

    monkeypatch.setattr(common_module, "load_encoder", must_not_load)
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-encoder"):
        train_reward_model(
            make_pairs(), config=RewardTrainConfig(base_model="no-such-org/no-such-encoder"), output_dir=tmp_path / "rm"
        )
    assert not (tmp_path / "rm").exists()


def test_should_stop_ends_training_without_writing_an_artifact(tiny_bert_dir, make_pairs, tmp_path):
    polls = []

    def stop_on_third_poll() -> bool:
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(TrainingStopped, match="step 2"):
        train_reward_model(
            make_pairs(), config=_tiny_config(tiny_bert_dir), output_dir=tmp_path / "rm", should_stop=stop_on_third_poll
        )
    assert not (tmp_path / "rm").exists()


def test_the_packaged_minilm_trains_a_few_steps_and_scores(make_pairs, tmp_path):
    pairs = make_pairs(n_prompts=5, pairs_per_prompt=2)
    config = RewardTrainConfig(epochs=1, batch_size=4, eval_fraction=0.2, max_length=32)
    result = train_reward_model(pairs, config=config, output_dir=tmp_path / "rm")
    assert result.metrics["n_train"] == 8 and result.metrics["n_eval"] == 2
    assert 0.0 <= result.metrics["heldout_accuracy"] <= 1.0
    assert result.metrics["steps"] == 2
    scores = score_responses(result.artifact_dir, [(pairs[0].prompt, pairs[0].chosen), (pairs[0].prompt, pairs[0].rejected)])
    assert len(scores) == 2 and all(isinstance(score, float) for score in scores)


def test_gpu_batches_round_their_length_up_to_a_multiple_of_64_within_max_length():
    from learning.reward.model import padded_length

    assert [padded_length(n, 256) for n in (1, 64, 65, 200, 256)] == [64, 64, 128, 256, 256]
    assert padded_length(130, 150) == 150 and padded_length(40, 50, multiple=8) == 40
