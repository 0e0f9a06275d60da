"""Tiny models built from a config, for tests that must run real training code in seconds."""

from __future__ import annotations

import copy
from pathlib import Path


def tiny_llama():
    """(SmolLM2's tokenizer, a one-layer Llama of random weights over its vocabulary), seeded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from learning.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2")  # from the GGUF: real vocabulary and chat template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer, LlamaForCausalLM(config)


def one_dpo_step(rows: list[dict], output_dir: Path) -> tuple[object, list[str]]:
    """Run TRL's DPOTrainer for one step on a one-layer Llama with SmolLM2's tokenizer.

    Returns the trainer's output and the names of the parameters that moved.
    """
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer, model = tiny_llama()
    args = DPOConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        max_steps=1,
        learning_rate=1e-3,
        beta=0.1,
        max_length=64,
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=0,
    )
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    # trl 1.16 rebuilds a missing ref_model from the policy's config path; a model built from a
    # config has none, so the frozen reference is passed explicitly.
    trainer = DPOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    output = trainer.train()
    moved = [name for name, parameter in model.named_parameters() if not torch.equal(before[name], parameter.detach())]
    return output, moved


def save_tiny_bert(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT (random weights) with MiniLM's tokenizer, saved as a local model folder."""
    import torch
    from transformers import BertConfig, BertModel

    from learning.models import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
