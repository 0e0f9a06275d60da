"""Each job kind's config checks itself once, names what is wrong, and loads no torch."""

import json
import subprocess
import sys

import pytest

from learning.config import ConfigError
from learning.jobs import JOB_KINDS, job_config


@pytest.mark.parametrize("kind", list(JOB_KINDS))
def test_every_kind_builds_its_defaults_and_refuses_an_unknown_key_naming_it(kind):
    assert job_config(kind, {}) == JOB_KINDS[kind].config()
    with pytest.raises(ConfigError, match="epochz") as refused:
        job_config(kind, {"epochz": 1})
    assert refused.value.field == "config"


@pytest.mark.parametrize(
    ("kind", "key", "value", "wanted"),
    [
        ("reward", "epochs", "2", "a whole number from 1 to 1000"),
        ("reward", "batch_size", True, "a whole number from 1 to 4096"),
        ("reward", "strength_margin", 1, "true or false"),
        ("reward", "loss", "hinge", "one of bt, davidson"),
        ("reward", "ranking_loss", "listnet", "one of plackett_luce, split_pairs"),
        ("reward", "ensemble_mode", "votes", "one of seeds, bootstrap"),
        ("reward", "ensemble_size", 0, "a whole number from 1 to 64"),
        ("reward", "lora_learning_rate", -1.0, "a number above 0"),
        ("reward", "head_learning_rate", float("inf"), "a number above 0"),
        ("span_reward", "segmentation", "word", "one of sentence, subsentence"),
        ("span_reward", "min_subsentence_words", 0, "a whole number from 1 to 1000"),
        ("rating_reward", "eval_fraction", -0.1, "a number from 0 up to (not including) 1"),
        ("rating_reward", "bf16", "yes", "true or false or null"),
        ("features", "model_version", 0, "null or a model version's id"),
        ("features", "model_version", "v1", "a whole number or null"),
        ("features", "batch_size", 0, "a whole number from 1 to 4096"),
        ("selection", "size", 0, "a whole number from 1 to 2147483647"),
        ("selection", "seed", -1, "a whole number from 0 to 2147483647"),
        ("selection", "strategy", "clairvoyant", "one of random, uncertainty, d_optimal, d_optimal_offline"),
        ("selection", "params", [], "an object"),
    ],
)
def test_a_wrong_type_or_value_is_refused_naming_the_key(kind, key, value, wanted):
    with pytest.raises(ConfigError) as refused:
        job_config(kind, {key: value})
    assert refused.value.field == f"config.{key}"
    assert str(refused.value) == f"config.{key} must be {wanted}, not {value!r}."


def test_a_config_built_directly_is_checked_too():
    from learning.reward.config import RewardTrainConfig

    with pytest.raises(ConfigError) as refused:
        RewardTrainConfig(max_length=4)
    assert refused.value.field == "max_length"


def test_an_unknown_kind_is_refused_naming_the_kinds():
    with pytest.raises(ConfigError, match="reward, span_reward, rating_reward, features") as refused:
        job_config("policy", {})
    assert refused.value.field == "kind"


def test_the_table_and_the_configs_load_no_torch():
    code = (
        "import sys, json; import learning.jobs, learning.reward.config, learning.features_config, learning.config; "
        "print(json.dumps([m for m in ('torch', 'transformers') if m in sys.modules]))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(loaded) == []


def test_each_runner_named_in_the_table_exists():
    import importlib

    for kind in JOB_KINDS.values():
        module, _, function = kind.runner.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), kind.name


def test_a_selection_config_checks_its_strategys_parameters_as_a_study_does():
    with pytest.raises(ConfigError) as refused:
        job_config("selection", {"strategy": "d_optimal", "params": {"lam": -1}})
    assert refused.value.field == "config.params.lam"
    assert str(refused.value) == "config.params.lam must be a number above 0, not -1."
    with pytest.raises(ConfigError) as unknown:
        job_config("selection", {"strategy": "d_optimal", "params": {"lamda": 1}})
    assert unknown.value.field == "config.params" and "lamda" in str(unknown.value)
    config = job_config("selection", {"strategy": "d_optimal", "params": {"lam": 2}, "size": 5, "seed": 3})
    assert config.strategy_params().lam == 2.0 and (config.size, config.seed) == (5, 3)


def test_a_config_is_checked_once_and_a_whole_number_given_for_a_number_is_stored_as_a_float(monkeypatch):
    """config_from_dict builds each config once (a dataclasses.replace ran every check again, and a
    selection's strategy parameters four times); the float it stores is what replace() keeps."""
    import dataclasses

    from learning.reward.config import RewardTrainConfig
    from learning.select import DOptimalParams
    from learning.select.job import SelectionConfig

    checks = []
    for cls in (RewardTrainConfig, SelectionConfig, DOptimalParams):
        check = cls.__post_init__
        monkeypatch.setattr(cls, "__post_init__", lambda self, check=check: checks.append(type(self).__name__) or check(self))
    reward = job_config("reward", {"learning_rate": 1, "epochs": 3})
    assert checks == ["RewardTrainConfig"]
    assert type(reward.learning_rate) is float and reward.learning_rate == 1.0 and reward.epochs == 3
    checks.clear()
    selection = job_config("selection", {"strategy": "d_optimal", "params": {"lam": 2}, "size": 5})
    assert checks == ["SelectionConfig", "DOptimalParams"]
    assert dataclasses.replace(reward) == reward and dataclasses.replace(selection) == selection


@pytest.mark.parametrize(
    ("kind", "config", "key"),
    [("reward", {"learning_rate": 10**400}, "learning_rate"), ("selection", {"params": {"lam": 10**400}}, "params.lam")],
)
def test_a_whole_number_too_large_for_a_number_is_refused_naming_the_key(kind, config, key):
    with pytest.raises(ConfigError) as refused:  # it was an OverflowError: a server error, not a 400
        job_config(kind, {"strategy": "d_optimal", **config} if kind == "selection" else config)
    assert refused.value.field == f"config.{key}"
    assert str(refused.value).startswith(f"config.{key} must be a number, not ")
