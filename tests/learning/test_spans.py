"""learning.reward.spans: segmentation, segment labels, dense rewards and the separator model."""

import random

import pytest
import torch

from learning.data import SpanExample
from learning.errors import NotEnoughLabels
from learning.models import ModelNotFoundError
from learning.reward import common as common_module
from learning.reward.spans import (
    SegmentPrediction,
    SpanTrainConfig,
    category_weight,
    dense_rewards,
    label_segments,
    predict_segments,
    predict_segments_batch,
    split_sentences,
    split_subsentences,
    train_span_model,
)


def _texts(text, ranges):
    return [text[start:end] for start, end in ranges]


def test_sentences_split_after_terminators_but_not_abbreviations_initials_or_decimals():
    text = (
        "Paris is the capital of France. It has 2.1 million people! Dr. Smith met J. K. Rowling in the U.S. "
        'on Monday. Is it big? "Yes." It was approx. five miles.\nA new line'
    )
    assert _texts(text, split_sentences(text)) == [
        "Paris is the capital of France.",
        "It has 2.1 million people!",
        "Dr. Smith met J. K. Rowling in the U.S. on Monday.",
        "Is it big?",
        '"Yes."',
        "It was approx. five miles.",
        "A new line",
    ]
    assert split_sentences("") == [] and split_sentences("   ") == []


def test_sentence_ranges_are_trimmed_and_point_into_the_original_text():
    text = "  First one.   Second one.  "
    assert split_sentences(text) == [(2, 12), (15, 26)]


def test_subsentences_split_after_punctuation_only_between_pieces_of_five_words():
    text = (
        "The album was released in 2018, and it features guest appearances from Gordi, which surprised many fans. "
        "Yes, it is. One two three four five; six seven eight nine ten."
    )
    assert _texts(text, split_subsentences(text)) == [
        "The album was released in 2018,",
        # "which surprised many fans." has four words: no split after "Gordi,"
        "and it features guest appearances from Gordi, which surprised many fans.",
        "Yes, it is.",  # too short to split at all
        "One two three four five;",
        "six seven eight nine ten.",
    ]


def test_a_segment_gets_a_category_when_any_character_of_its_spans_falls_inside():
    text = "First sentence here. Second sentence here. Third one."
    segments = split_sentences(text)  # (0, 20), (21, 42), (43, 53)
    spans = [(19, 23, "Irrelevant"), (50, 53, "Wrong-Grounding"), (0, 5, "Unknown-category")]
    labels = label_segments(segments, spans, ["Irrelevant", "Wrong-Grounding"])
    assert labels == [
        {"Irrelevant": True, "Wrong-Grounding": False},
        {"Irrelevant": True, "Wrong-Grounding": False},
        {"Irrelevant": False, "Wrong-Grounding": True},
    ]
    # A span that only touches the gap between segments (the space at 20) marks neither.
    assert label_segments(segments, [(20, 21, "Irrelevant")], ["Irrelevant"]) == [{"Irrelevant": False}] * 3


def test_dense_rewards_add_weight_for_clean_categories_and_subtract_for_errors():
    predictions = [
        SegmentPrediction(0, 10, {"relevance": False, "factuality": False}),
        SegmentPrediction(11, 20, {"relevance": True, "factuality": False}),
        SegmentPrediction(21, 30, {"relevance": True, "factuality": True}),
        SegmentPrediction(31, 40, {}, truncated=True),
    ]
    rewards = dense_rewards(predictions)  # relevance 0.3, factuality 0.5 by default
    assert [end for end, _ in rewards] == [10, 20, 30, 40]
    assert [reward for _, reward in rewards] == pytest.approx([0.8, 0.2, -0.8, 0.0])
    custom = dense_rewards(predictions, {"relevance": 1.0})
    assert [reward for _, reward in custom] == pytest.approx([1.5, -0.5, -1.5, 0.0])
    assert category_weight("Wrong-Grounding") == 0.5 and category_weight("Unverifiable") == 0.5
    assert category_weight("Irrelevant") == 0.3 and category_weight("Redundant") == 0.3


FILLERS = ["the river runs north", "many people live here", "it is a calm place", "the weather is mild", "trains leave hourly"]


def keyword_examples(n: int, seed: int = 0) -> list[SpanExample]:
    """Four sentences per response; one, at random, carries the keyword 'banana' and the error."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        text, spans, wrong = "", [], rng.randrange(4)
        for j in range(4):
            sentence = rng.choice(FILLERS) + (" banana" if j == wrong else "")
            sentence = sentence.capitalize() + "."
            start = len(text) + (1 if text else 0)
            text = f"{text} {sentence}" if text else sentence
            if j == wrong:
                spans.append((start, start + len(sentence), "factual"))
        examples.append(SpanExample(prompt=f"Question {i}?", response=text, spans=spans, group=f"q{i}"))
    return examples


def _config(base_model, **overrides) -> SpanTrainConfig:
    settings = {
        "base_model": str(base_model),
        "epochs": 12,
        "batch_size": 8,
        "learning_rate": 1e-2,
        "head_learning_rate": 2e-2,
        "max_length": 64,
        "eval_fraction": 0.25,
    }
    return SpanTrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def span_model(tiny_modernbert_dir, tmp_path_factory):
    reports: list[dict] = []
    result = train_span_model(
        keyword_examples(40),
        categories=["factual"],
        config=_config(tiny_modernbert_dir),
        output_dir=tmp_path_factory.mktemp("span") / "model",
        progress=reports.append,
    )
    return result, reports


def test_the_span_model_finds_the_segment_a_keyword_marks(span_model):
    result, reports = span_model
    metrics = result.metrics
    assert metrics["n_eval"] == 10 and metrics["n_eval_segments"] == 40
    assert metrics["segment_positive_rate"]["factual"] == 0.25
    # Always answering "error" scores F1 = 2p / (1 + p) = 0.4; the model must do far better.
    assert metrics["segment_f1"]["factual"] >= 0.8
    assert reports[-1]["step"] == reports[-1]["total_steps"] == metrics["steps"]
    assert {"weights.safetensors", "metadata.json", "checksums.json", "backbone/config.json"} <= set(result.files)


def test_predict_segments_labels_each_segment_and_feeds_dense_rewards(span_model):
    result, _ = span_model
    response = "The river runs north. Many people live here banana. Trains leave hourly."
    predictions = predict_segments(result.artifact_dir, "Question?", response, expected_checksum=result.checksum)
    assert [(p.start, p.end) for p in predictions] == [(0, 21), (22, 51), (52, 72)]
    assert [p.labels["factual"] for p in predictions] == [False, True, False]
    assert [reward for _, reward in dense_rewards(predictions)] == pytest.approx([0.5, -0.5, 0.5])


def test_segments_cut_off_by_max_length_get_no_prediction(span_model):
    result, _ = span_model
    long_response = " ".join(["The weather is mild."] * 30)
    (predictions,) = predict_segments_batch(result.artifact_dir, [("Question?", long_response)])
    assert len(predictions) == 30
    assert predictions[0].labels and not predictions[0].truncated
    assert predictions[-1].truncated and predictions[-1].labels == {}


def test_span_training_checks_the_model_and_the_label_count_before_any_work(tiny_modernbert_dir, tmp_path, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the encoder was loaded before the inputs were checked")

    monkeypatch.setattr(common_module, "load_encoder", must_not_load)
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-encoder"):
        train_span_model(
            keyword_examples(10), categories=["factual"], config=_config("no-such-org/no-such-encoder"), output_dir=tmp_path / "m"
        )
    empty = SpanExample(prompt="q", response="   ", spans=[])
    with pytest.raises(NotEnoughLabels, match=r"at least 8 labelled responses; it has 5"):
        train_span_model(
            [*keyword_examples(5), empty], categories=["factual"], config=_config(tiny_modernbert_dir), output_dir=tmp_path / "m"
        )
    assert not (tmp_path / "m").exists()


def test_span_model_weights_move_during_training(span_model, tiny_modernbert_dir):
    from safetensors.torch import load_file

    from learning.artifacts import load_artifact

    result, _ = span_model
    initial = load_file(str(tiny_modernbert_dir / "model.safetensors"))
    trained = load_artifact(result.artifact_dir).load_tensors()
    name = next(n for n in initial if n.endswith("attn.Wqkv.weight"))
    assert not torch.allclose(initial[name], trained["backbone." + name])
