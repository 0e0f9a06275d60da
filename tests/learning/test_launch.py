"""learning.launch: a job's data, the study's fixed evaluation split included, reaches the trainer."""

from learning.data import PreferencePair
from learning.launch import job_from_json, job_to_json, run_job


def test_the_studys_eval_groups_reach_the_trainer_through_a_job_file(monkeypatch, tmp_path):
    seen = {}

    def fake_trainer(pairs, **kwargs):
        seen.update(kwargs, pairs=pairs)
        return "trained"

    monkeypatch.setattr("learning.reward.train.train_reward_model", fake_trainer)
    pair = PreferencePair(prompt=[{"role": "user", "content": "hi"}], chosen="a", rejected="b", group="7")
    kind, config, data = job_from_json(job_to_json("reward", {}, {"pairs": [pair], "rankings": [], "eval_groups": ["7"]}))
    assert run_job(kind, config, data, output_dir=tmp_path) == "trained"
    assert seen["eval_groups"] == ["7"] and seen["pairs"] == [pair]
