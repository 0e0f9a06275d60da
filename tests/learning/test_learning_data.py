"""learning.data: margins, TRL rows, group splits and data hashes (no torch needed)."""

import re
import subprocess
import sys

import pytest

from learning.data import (
    PreferencePair,
    data_hash,
    fixed_split,
    held_out_keys,
    partition_by_group,
    split_by_group,
    strength_to_margin,
    to_trl_preference_row,
)


def test_strength_maps_to_thirds_of_a_unit_margin():
    assert [strength_to_margin(s) for s in (1, 2, 3)] == pytest.approx([1 / 3, 2 / 3, 1.0])


@pytest.mark.parametrize("strength", [0, 4, -1, True, 2.5, "2"])
def test_strength_outside_one_to_three_raises_value_error_naming_the_value(strength):
    with pytest.raises(ValueError, match=re.escape(repr(strength))):
        strength_to_margin(strength)


def test_trl_row_is_conversational_with_an_assistant_turn_per_response():
    pair = PreferencePair(
        prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
        chosen="Hello!",
        rejected="Go away.",
        margin=2 / 3,
    )
    assert to_trl_preference_row(pair) == {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
        "margin": 2 / 3,
    }


def test_split_keeps_every_group_on_one_side(make_pairs):
    pairs = make_pairs(n_prompts=20, pairs_per_prompt=3)
    train, held_out = split_by_group(pairs, eval_fraction=0.25, seed=1)
    train_groups = {p.group for p in train}
    eval_groups = {p.group for p in held_out}
    assert not train_groups & eval_groups
    assert len(train) + len(held_out) == len(pairs)
    assert len(eval_groups) == 5


def test_split_is_deterministic_and_ignores_input_order(make_pairs):
    pairs = make_pairs(n_prompts=20)
    first = split_by_group(pairs, eval_fraction=0.3, seed=7)
    again = split_by_group(pairs, eval_fraction=0.3, seed=7)
    reversed_input = split_by_group(list(reversed(pairs)), eval_fraction=0.3, seed=7)
    other_seed = split_by_group(pairs, eval_fraction=0.3, seed=8)
    assert first == again
    assert {p.group for p in reversed_input[1]} == {p.group for p in first[1]}
    assert {p.group for p in other_seed[1]} != {p.group for p in first[1]}


def test_split_puts_at_least_one_group_on_each_side(make_pairs):
    pairs = make_pairs(n_prompts=2)
    for fraction in (0.01, 0.99):
        train, held_out = split_by_group(pairs, eval_fraction=fraction, seed=0)
        assert train and held_out


def test_split_with_a_single_group_keeps_everything_for_training(make_pairs):
    pairs = make_pairs(n_prompts=1, pairs_per_prompt=4)
    assert split_by_group(pairs, eval_fraction=0.5, seed=0) == (pairs, [])


def test_pairs_without_a_group_are_grouped_by_their_prompt():
    prompt_a = [{"role": "user", "content": "a"}]
    prompt_b = [{"role": "user", "content": "b"}]
    pairs = [PreferencePair(prompt=p, chosen=str(i), rejected="x") for i, p in enumerate([prompt_a, prompt_b] * 3)]
    train, held_out = split_by_group(pairs, eval_fraction=0.5, seed=0)
    assert len(train) == len(held_out) == 3
    assert len({p.prompt[0]["content"] for p in held_out}) == 1


def test_split_rejects_a_fraction_outside_zero_to_one(make_pairs):
    with pytest.raises(ValueError, match="eval_fraction"):
        split_by_group(make_pairs(n_prompts=3), eval_fraction=1.0, seed=0)


def test_data_hash_ignores_order_but_sees_any_change(make_pairs):
    pairs = make_pairs(n_prompts=5)
    assert data_hash(pairs) == data_hash(list(reversed(pairs)))
    changed = [*pairs[:-1], PreferencePair(**{**pairs[-1].__dict__, "margin": 0.5})]
    assert data_hash(changed) != data_hash(pairs)
    assert len(data_hash(pairs)) == 64


def test_importing_learning_data_does_not_import_torch():
    code = "import sys, learning, learning.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_pair_that_is_no_tie_hashes_as_before_ties_existed(make_pairs):
    import hashlib
    import json
    from dataclasses import asdict

    def canonical(value):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    pairs = make_pairs(n_prompts=3)
    legacy_rows = sorted(canonical({k: v for k, v in asdict(p).items() if k != "tie"}) for p in pairs)
    assert data_hash(pairs) == hashlib.sha256(canonical(legacy_rows).encode()).hexdigest()
    tied = [PreferencePair(**{**pairs[0].__dict__, "tie": True}), *pairs[1:]]
    assert data_hash(tied) != data_hash(pairs)


def test_data_hash_covers_rankings_spans_and_ratings():
    from learning.data import RankingExample, RatingExample, SpanExample

    ranking = RankingExample(prompt=[{"role": "user", "content": "q"}], responses=["a", "b", "c"], groups=[[2], [0, 1]])
    reordered = RankingExample(prompt=ranking.prompt, responses=ranking.responses, groups=[[2, 0], [1]])
    span = SpanExample(prompt="q", response="One. Two.", spans=[(0, 4, "Irrelevant")])
    rating = RatingExample(prompt="q", response="One.", ratings={"fluency": 4})
    base = data_hash([ranking, span, rating])
    assert base == data_hash([rating, span, ranking])
    assert base != data_hash([reordered, span, rating])
    assert base != data_hash([ranking, SpanExample(prompt="q", response="One. Two.", spans=[(5, 9, "Irrelevant")]), rating])
    assert base != data_hash([ranking, span, RatingExample(prompt="q", response="One.", ratings={"fluency": 5})])


def test_examples_reject_impossible_labels():
    from learning.data import RankingExample, RatingExample, SpanExample

    with pytest.raises(ValueError, match="index 3"):
        RankingExample(prompt=[], responses=["a", "b"], groups=[[3], [0]])
    with pytest.raises(ValueError, match="more than once"):
        RankingExample(prompt=[], responses=["a", "b"], groups=[[0], [0, 1]])
    with pytest.raises(ValueError, match="outside"):
        SpanExample(prompt="q", response="short", spans=[(2, 40, "x")])
    with pytest.raises(ValueError, match="1 to 5"):
        RatingExample(prompt="q", response="r", ratings={"fluency": 6})


def test_a_ranking_splits_into_preference_pairs_and_shares_its_groups_split_with_pairs():
    from learning.data import RankingExample, ranking_example_to_pairs

    prompt = [{"role": "user", "content": "q"}]
    ranking = RankingExample(prompt=prompt, responses=["a", "b", "c"], groups=[[2], [0, 1]], group="g1", annotator="ann")
    pairs = ranking_example_to_pairs(ranking)
    assert [(p.chosen, p.rejected) for p in pairs] == [("c", "a"), ("c", "b")]
    assert {(p.group, p.annotator) for p in pairs} == {("g1", "ann")}
    mixed = [*pairs, ranking, PreferencePair(prompt=prompt, chosen="x", rejected="y", group="g2")]
    train, held_out = split_by_group(mixed, eval_fraction=0.5, seed=0)
    assert {item.group for item in held_out} in ({"g1"}, {"g2"})
    assert len(train) + len(held_out) == 4 and ranking in train + held_out


def test_importing_the_evaluation_helpers_does_not_import_torch():
    code = "import sys, learning.reward.evaluate; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_fixed_split_never_moves_a_prompt_when_others_arrive():
    first = {f"p{i}": fixed_split(f"p{i}", seed=3, eval_fraction=0.2) for i in range(200)}
    later = {f"p{i}": fixed_split(f"p{i}", seed=3, eval_fraction=0.2) for i in range(1000)}
    assert all(later[key] == side for key, side in first.items())
    assert 150 < sum(side == "eval" for side in later.values()) < 250  # about a fifth
    assert fixed_split("p1", seed=3, eval_fraction=0.0) == "train"
    other_seed = {f"p{i}": fixed_split(f"p{i}", seed=4, eval_fraction=0.2) for i in range(200)}
    assert other_seed != first


def test_given_eval_groups_decide_the_split_whatever_the_examples(make_pairs):
    pairs = make_pairs(n_prompts=10)
    held_out = held_out_keys(pairs, eval_fraction=0.5, seed=0, eval_groups=["prompt-3", "prompt-7", "not-labelled"])
    train, evaluation = partition_by_group(pairs, held_out)
    assert {p.group for p in evaluation} == {"prompt-3", "prompt-7"}
    assert len(train) + len(evaluation) == len(pairs)


def test_the_split_of_all_labels_does_not_depend_on_which_are_later_dropped(make_pairs):
    pairs = make_pairs(n_prompts=20)
    ties_only = [
        PreferencePair(prompt=[{"role": "user", "content": f"t{i}"}], chosen="a", rejected="b", group=f"tie-{i}", tie=True)
        for i in range(10)
    ]
    held_out = held_out_keys([*pairs, *ties_only], eval_fraction=0.3, seed=0)
    with_ties = partition_by_group([*pairs, *ties_only], held_out)[1]
    without_ties = partition_by_group(pairs, held_out)[1]
    assert [p for p in with_ties if not p.tie] == without_ties
