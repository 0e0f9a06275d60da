"""Fixtures for learning/ tests: offline hub, tiny models built from configs, synthetic pairs."""

import os

# Before transformers / huggingface_hub are imported: the tests must never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from learning.data import PreferencePair  # noqa: E402

GOOD_WORDS = ["helpful", "clear", "correct", "kind", "accurate", "thorough", "polite", "precise"]
BAD_WORDS = ["rude", "wrong", "vague", "useless", "sloppy", "false", "confusing", "lazy"]
TOPICS = ["cats", "rivers", "taxes", "python", "music", "bread", "stars", "trains", "chess", "tea", "snow", "maps"]


def separable_pairs(n_prompts: int = 24, pairs_per_prompt: int = 2, seed: int = 0) -> list[PreferencePair]:
    """Chosen responses use 'good' words, rejected ones 'bad' words: learnable from bag of words."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n_prompts):
        topic = TOPICS[i % len(TOPICS)]
        for _ in range(pairs_per_prompt):
            pairs.append(
                PreferencePair(
                    prompt=[{"role": "user", "content": f"Tell me about {topic} ({i})"}],
                    chosen=f"about {topic}: " + " ".join(rng.sample(GOOD_WORDS, 3)),
                    rejected=f"about {topic}: " + " ".join(rng.sample(BAD_WORDS, 3)),
                    margin=rng.choice([0.0, 1 / 3, 1.0]),
                    group=f"prompt-{i}",
                    annotator=f"annotator-{i % 3}",
                )
            )
    return pairs


@pytest.fixture(scope="session")
def make_pairs():
    """The ``separable_pairs`` factory, as a fixture so tests need not import conftest."""
    return separable_pairs


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_encoder_dir: Path) -> Path:
    """A 2-layer, 32-wide BERT from a config (random weights) with the MiniLM tokenizer."""
    return tiny_encoder_dir


@pytest.fixture(scope="session")
def tiny_modernbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide ModernBERT from a config, with the MiniLM tokenizer.

    Its rotary position embeddings make "look at the words just before this token" cheap to
    learn, which span models need and a tiny BERT with absolute positions learns too slowly.
    """
    import torch
    from transformers import ModernBertConfig, ModernBertModel

    from learning.models import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-modernbert")
    tokenizer = load_tokenizer("minilm")
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        local_attention=16,
        global_attn_every_n_layers=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        cls_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        sep_token_id=tokenizer.sep_token_id,
    )
    ModernBertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
