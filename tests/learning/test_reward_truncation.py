"""Fitting (prompt, response) pairs into max_length: the latest turn and the response survive."""

import pytest

from learning.data import PreferencePair
from learning.models import load_tokenizer
from learning.reward.model import encode_pairs
from learning.reward.spans import encode_segments, split_sentences
from learning.reward.train import RewardTrainConfig, train_reward_model
from learning.reward.truncation import fit_pair


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


def conversation(turns: int, words: int = 12) -> list[dict]:
    """Alternating user/assistant turns; turn i says 'turn<i>' many times, the last asks the final question."""
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": " ".join([f"turn{i}"] * words)} for i in range(turns - 1)
    ]
    return [*messages, {"role": "user", "content": "so which river is the longest"}]


def decoded(tokenizer, row) -> str:
    return tokenizer.decode(row["input_ids"])


def test_a_long_conversation_loses_its_oldest_turns_and_keeps_the_final_question_and_the_response(tokenizer):
    prompt = conversation(turns=9)
    response = "the nile is usually named the longest river"
    (row,), (cut,) = encode_pairs(tokenizer, [(prompt, response)], max_length=64)

    text = decoded(tokenizer, row)
    assert cut and len(row["input_ids"]) <= 64
    assert "user : so which river is the longest" in text
    assert text.rstrip().endswith("the nile is usually named the longest river [SEP]")
    assert "turn0" not in text  # the oldest turn went first
    assert "turn7" in text  # the latest earlier turn that fits is kept


def test_dropped_turns_go_whole_so_every_kept_line_keeps_its_role(tokenizer):
    fitted = fit_pair(tokenizer, conversation(turns=9), "short answer", max_length=64)
    lines = fitted.prompt.split("\n")
    assert all(line.startswith(("user: ", "assistant: ")) for line in lines)
    assert lines[-1] == "user: so which river is the longest"


def test_a_pair_that_fits_is_left_alone(tokenizer):
    prompt = conversation(turns=3, words=2)
    fitted = fit_pair(tokenizer, prompt, "fine", max_length=128)
    assert not fitted.cut
    assert fitted.prompt == "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def test_a_response_longer_than_the_budget_keeps_its_beginning_and_leaves_the_prompt_a_quarter(tokenizer):
    prompt = [{"role": "user", "content": "name every river you know from the longest to the shortest please"}]
    response = " ".join(f"river{i}" for i in range(200))
    (row,), (cut,) = encode_pairs(tokenizer, [(prompt, response)], max_length=64)

    text = decoded(tokenizer, row)
    assert cut and len(row["input_ids"]) == 64
    assert "river0 " in text and "river199" not in text
    assert "shortest please" in text  # the end of the latest turn survives
    assert sum(1 for segment in row["token_type_ids"] if segment == 0) >= (64 - 3) // 4


def test_a_latest_turn_too_long_for_its_room_keeps_its_role_and_its_last_words(tokenizer):
    prompt = [{"role": "user", "content": " ".join(["filler"] * 100) + " what is the capital of peru"}]
    fitted = fit_pair(tokenizer, prompt, "lima", max_length=32)
    assert fitted.cut
    assert fitted.prompt.startswith("user: ") and fitted.prompt.endswith("what is the capital of peru")


def test_training_records_how_many_comparisons_were_cut(tiny_bert_dir, tmp_path):
    long_prompt, short_prompt = conversation(turns=9), [{"role": "user", "content": "hi"}]
    pairs = [
        PreferencePair(prompt=long_prompt if i < 6 else short_prompt, chosen="good clear", rejected="bad", group=f"g{i}")
        for i in range(16)
    ]
    config = RewardTrainConfig(
        base_model=str(tiny_bert_dir), epochs=1, batch_size=8, max_length=48, eval_fraction=0.25, min_pairs=2
    )
    result = train_reward_model(pairs, config=config, output_dir=tmp_path / "rm")
    assert result.metrics["n_truncated"] == 6


def test_span_encoding_keeps_the_final_question_and_every_segment_separator(tokenizer):
    response = "The Nile is long. The Amazon is wide."
    segments = split_sentences(response)
    ((row, separators),), (cut,) = encode_segments(tokenizer, [(conversation(turns=9), response, segments)], max_length=64)
    assert cut and len(row["input_ids"]) <= 64
    assert "so which river is the longest" in tokenizer.decode(row["input_ids"])
    assert len(separators) == len(segments) == 2
