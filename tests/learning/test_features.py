"""Last-layer features: mean-pooled hidden states of an encoder or a causal LM, cached as float16 shards."""

import numpy as np
import pytest

from learning.features import FeatureCache, RewardCache, compute_features, load_feature_backbone

ITEMS = [
    ([{"role": "user", "content": "What is tea?"}], "A drink made from leaves."),
    ([{"role": "user", "content": "What is snow?"}], "Frozen water falling from clouds, often in winter."),
    ([{"role": "user", "content": "Name a river."}], "The Nile."),
]


def test_encoder_features_are_mean_pooled_hidden_states_in_input_order(tiny_encoder_dir):
    import torch

    tokenizer, backbone = load_feature_backbone(str(tiny_encoder_dir))
    updates = []
    features = compute_features(backbone, tokenizer, ITEMS, batch_size=2, progress=updates.append)
    assert features.shape == (3, backbone.config.hidden_size)
    assert updates[-1] == {"step": 2, "total_steps": 2}
    # One item alone gives the same row as within a length-sorted batch: order and pooling are right.
    encoded = tokenizer("user: What is snow?", ITEMS[1][1], return_tensors="pt")
    with torch.no_grad():
        hidden = backbone(**encoded).last_hidden_state
    np.testing.assert_allclose(features[1], hidden.mean(dim=1)[0].numpy(), atol=1e-5)
    assert not np.allclose(features[0], features[2])


def test_causal_lm_features_use_its_last_layer():
    from tests.tiny_models import tiny_llama

    tokenizer, model = tiny_llama()
    features = compute_features(model, tokenizer, ITEMS[:2], batch_size=2)
    assert features.shape == (2, 16) and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])


def test_cache_returns_what_it_stored_and_says_what_is_missing(tmp_path):
    cache = FeatureCache(tmp_path / "m1", model="reward v1")
    values = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    cache.store([10, 11, 12], values)
    assert cache.missing([11, 12, 13, 14]) == [13, 14]
    cache.store([13], values[:1] * 2)
    found, loaded = FeatureCache(tmp_path / "m1", model="reward v1").load([13, 10, 99])
    assert found.tolist() == [True, True, False]
    np.testing.assert_allclose(loaded[1], values[0], atol=1e-2)  # float16 storage
    np.testing.assert_allclose(loaded[0], values[0] * 2, atol=1e-2)
    assert list((tmp_path / "m1").glob("*.tmp*")) == []


def test_cache_refuses_another_models_features_or_other_dims(tmp_path):
    FeatureCache(tmp_path / "m", model="a").store([1], np.ones((1, 4)))
    with pytest.raises(ValueError, match="holds features of 'a'"):
        FeatureCache(tmp_path / "m", model="b")
    with pytest.raises(ValueError, match="4"):
        FeatureCache(tmp_path / "m", model="a").store([2], np.ones((1, 5)))


def test_reward_cache_keeps_small_reward_differences_that_float16_would_round_away(tmp_path):
    rewards = np.array([[1000.0, 1000.01], [1000.02, 1000.03]], dtype=np.float32)  # two responses, two members
    RewardCache(tmp_path / "r", model="v1").store([5, 6], rewards)
    found, loaded = RewardCache(tmp_path / "r", model="v1").load([6, 5])
    assert found.all() and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, rewards[::-1])
    FeatureCache(tmp_path / "f", model="v1").store([5], rewards[:1])
    assert np.unique(FeatureCache(tmp_path / "f", model="v1").load([5])[1]).size == 1  # float16: both 1000
    with pytest.raises(ValueError, match="holds features of 'v1'"):
        RewardCache(tmp_path / "r", model="v2")
