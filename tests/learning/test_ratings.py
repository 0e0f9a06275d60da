"""learning.reward.ratings: the sequence-level regression model from aspect ratings."""

import random

import pytest

from learning.data import RatingExample
from learning.errors import NotEnoughLabels
from learning.models import ModelNotFoundError
from learning.reward import common as common_module
from learning.reward.ratings import RatingTrainConfig, score_ratings, train_rating_model


def rated_examples(n: int = 40, seed: int = 0) -> list[RatingExample]:
    """Quality = how many of five words are 'great' (the rest 'bad'); every response is 'length' 3."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        quality = rng.randint(1, 5)
        words = ["great"] * quality + ["bad"] * (5 - quality)
        ratings = {"quality": quality, "length": 3} if i % 4 else {"quality": quality}  # some rate one aspect only
        examples.append(RatingExample(prompt=f"Q{i}", response=" ".join(rng.sample(words, 5)), ratings=ratings, group=f"g{i}"))
    return examples


def _config(base_model, **overrides) -> RatingTrainConfig:
    settings = {
        "base_model": str(base_model),
        "epochs": 8,
        "batch_size": 8,
        "learning_rate": 5e-3,
        "head_learning_rate": 1e-2,
        "max_length": 64,
        "eval_fraction": 0.25,
    }
    return RatingTrainConfig(**{**settings, **overrides})


def test_the_rating_model_learns_aspect_scores_and_scores_new_responses(tiny_bert_dir, tmp_path):
    result = train_rating_model(rated_examples(), config=_config(tiny_bert_dir), output_dir=tmp_path / "m")
    metrics = result.metrics
    assert metrics["n_train"] == 30 and metrics["n_eval"] == 10
    assert metrics["heldout_spearman"]["quality"] > 0.7
    assert metrics["heldout_mae"]["quality"] < 0.8  # guessing the middle (3) gives about 1.2
    assert metrics["heldout_mae"]["length"] < 0.5
    assert metrics["heldout_spearman"]["length"] is None  # a constant rating has no ranking
    scores = score_ratings(result.artifact_dir, [("Q", "great great great great great"), ("Q", "bad bad bad bad bad")])
    assert set(scores[0]) == {"length", "quality"}
    assert scores[0]["quality"] > scores[1]["quality"] + 1.5
    assert all(1.0 <= value <= 5.0 for row in scores for value in row.values())
    normalised = score_ratings(result.artifact_dir, [("Q", "great great great great great")], normalised=True)
    assert 0.0 <= normalised[0]["quality"] <= 1.0


def test_rating_training_checks_the_model_and_the_label_count_before_any_work(tiny_bert_dir, tmp_path, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the encoder was loaded before the inputs were checked")

    monkeypatch.setattr(common_module, "load_encoder", must_not_load)
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-encoder"):
        train_rating_model(rated_examples(), config=_config("no-such-org/no-such-encoder"), output_dir=tmp_path / "m")
    with pytest.raises(NotEnoughLabels, match=r"at least 8 rated responses; it has 3"):
        train_rating_model(rated_examples(3), config=_config(tiny_bert_dir), output_dir=tmp_path / "m")
    with pytest.raises(NotEnoughLabels, match=r"it has 0"):
        train_rating_model(rated_examples(), aspects=["helpfulness"], config=_config(tiny_bert_dir), output_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()
