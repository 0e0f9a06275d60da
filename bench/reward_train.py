"""Reward-model benchmark: our trainer's speed against TRL's, and held-out accuracy on real labels.

Run by hand (never from the tests); it prints its figures and asserts nothing:

    .venv/bin/python bench/reward_train.py                        # defaults: MiniLM, full settings
    .venv/bin/python bench/reward_train.py --max-records 40 --epochs 1 --throughput-pairs 64   # quick

(a) Throughput. Our ``train_reward_model`` and TRL's ``RewardTrainer`` train the same backbone
(``--model``, MiniLM by default) on the same pairs, already tokenised the same way (the question
and answer as a pair encoding, truncated to ``--max-length``), with the same batch size, epochs,
learning rate and precision (bf16 on a CUDA GPU that supports it, fp32 elsewhere). Both loops
are timed in this one run and reported as pairs per second and as a ratio. TRL trains
``AutoModelForSequenceClassification`` (the [CLS] pooler + a linear head) with its own collator;
ours mean-pools, buckets batches by length and scores chosen and rejected in one forward pass.

(b) Accuracy on real human labels: the pairwise preferences of qa_feedback (``--data``; six per
record among predictions 1..4; 1 = first better, 2 = second better, 0 = tie), split by
question (the same split for every method). The prompt is the question alone (the passages are
left out). Printed side by side on the held-out non-tied pairs:
  - our reward model with Bradley–Terry (ties dropped) and with Davidson (ties used);
  - a frozen-embedding linear probe: mean-pooled embeddings of (question, answer) from the same
    untrained backbone, logistic regression on chosen − rejected differences (both orientations).
ALGORITHMS.md §4 measured the probe at 52-54% on these labels; a reward model must beat it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_feedback_dev_first250.json"
# The six preferences of a record compare predictions in this order.
PREFERENCE_ORDER = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]


def load_qa_feedback(path: Path, max_records: int | None):
    """Every preference of the file as a PreferencePair (ties flagged), grouped by question."""
    from learning.data import PreferencePair

    records = json.loads(path.read_text())[:max_records]
    pairs = []
    for index, record in enumerate(records):
        prompt = [{"role": "user", "content": record["question"]}]
        for (first, second), label in zip(PREFERENCE_ORDER, record["preference"], strict=True):
            a, b = record[f"prediction {first}"], record[f"prediction {second}"]
            if label not in (0, 1, 2):
                continue
            chosen, rejected = (b, a) if label == 2 else (a, b)
            pairs.append(PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, group=f"q{index}", tie=label == 0))
    return pairs


class Bar:
    """A tqdm bar fed by the trainers' progress callback."""

    def __init__(self, label: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc=label, unit="step", leave=False)

    def __call__(self, update: dict) -> None:
        self.bar.total = update["total_steps"]
        self.bar.n = update["step"]
        self.bar.set_postfix(loss=f"{update['loss']:.3f}")
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def train_ours(pairs, args, *, output_dir: Path, label: str, loss: str = "bt", epochs: int | None = None):
    from learning.reward.train import RewardTrainConfig, train_reward_model

    config = RewardTrainConfig(
        base_model=args.model,
        epochs=epochs or args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        eval_fraction=0.0,  # the benchmark holds out its own split, the same for every method
        seed=args.seed,
        min_pairs=2,
        loss=loss,
    )
    bar = Bar(label)
    try:
        return train_reward_model(pairs, config=config, output_dir=output_dir, progress=bar)
    finally:
        bar.close()


def throughput(pairs, args, workdir: Path) -> None:
    """(a): our trainer vs TRL's RewardTrainer, same backbone, data, batch size and length."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from learning.models import load_tokenizer, resolve_model

    try:
        from datasets import Dataset
        from trl import RewardConfig, RewardTrainer
    except ImportError as error:  # TRL is an optional extra on some machines
        print(f"\n(a) throughput: skipped, TRL is not importable here ({error})")
        return
    from learning.reward.model import resolve_bf16, tokenize

    pairs = [p for p in pairs if not p.tie][: args.throughput_pairs]
    bf16 = resolve_bf16(None)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"\n(a) throughput: {len(pairs)} pairs x {args.epochs} epochs, batch {args.batch_size}, "
        f"max_length {args.max_length}, {'bf16' if bf16 else 'fp32'} on {device}"
    )

    # Warm-up (CUDA context, kernels), so neither timed run pays for it.
    train_ours(pairs[: args.batch_size * 2], args, output_dir=workdir / "warmup", label="warm-up", epochs=1)

    ours = train_ours(pairs, args, output_dir=workdir / "ours", label="ours")
    ours_seconds = ours.metrics["train_seconds"]
    ours_rate = len(pairs) * args.epochs / ours_seconds

    tokenizer = load_tokenizer(args.model)
    chosen = tokenize(tokenizer, [(p.prompt, p.chosen) for p in pairs], args.max_length)
    rejected = tokenize(tokenizer, [(p.prompt, p.rejected) for p in pairs], args.max_length)
    dataset = Dataset.from_dict(
        {"chosen_ids": [r["input_ids"] for r in chosen], "rejected_ids": [r["input_ids"] for r in rejected]}
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        str(resolve_model(args.model).path), num_labels=1, local_files_only=True
    )
    trl_args = RewardConfig(
        output_dir=str(workdir / "trl"),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0.1,  # a fraction of the steps, as ours
        bf16=bf16,
        fp16=False,
        gradient_checkpointing=False,  # ours does not checkpoint either
        max_length=args.max_length,
        logging_steps=50,
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_cpu=device == "cpu",
    )
    trainer = RewardTrainer(model=model, args=trl_args, train_dataset=dataset, processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    trl_seconds = time.perf_counter() - started
    trl_rate = len(pairs) * args.epochs / trl_seconds

    print(f"    ours: {ours_rate:8.1f} pairs/s  ({ours_seconds:.2f} s training loop)")
    print(f"    TRL : {trl_rate:8.1f} pairs/s  ({trl_seconds:.2f} s trainer.train())")
    print(f"    ratio ours / TRL: {ours_rate / trl_rate:.2f}x")


def mean_pooled_embeddings(pairs_of_texts, args):
    """Frozen backbone, mean-pooled over tokens, for (prompt, response) items."""
    import torch
    from tqdm import tqdm

    from learning.models import load_encoder
    from learning.reward.model import collate, mean_pool, pick_device, tokenize

    tokenizer, backbone = load_encoder(args.model)
    device = pick_device()
    backbone.to(device).eval()
    rows = tokenize(tokenizer, pairs_of_texts, args.max_length)
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(rows), 64), desc="probe embeddings", leave=False):
            batch = collate(tokenizer, rows[start : start + 64], device)
            hidden = backbone(**batch).last_hidden_state
            out.append(mean_pool(hidden, batch["attention_mask"]).cpu())
    return torch.cat(out).numpy()


def probe_accuracy(train_pairs, eval_pairs, args) -> float:
    """Logistic regression on embedding differences (both orientations), no intercept."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    items = [(p.prompt, text) for p in [*train_pairs, *eval_pairs] for text in (p.chosen, p.rejected)]
    embeddings = mean_pooled_embeddings(items, args)
    differences = embeddings[0::2] - embeddings[1::2]
    train_x = differences[: len(train_pairs)]
    eval_x = differences[len(train_pairs) :]
    x = np.concatenate([train_x, -train_x])
    y = np.concatenate([np.ones(len(train_x)), np.zeros(len(train_x))])
    probe = LogisticRegression(fit_intercept=False, C=1.0, max_iter=2000).fit(x, y)
    return float((eval_x @ probe.coef_[0] > 0).mean())


def heldout_accuracy(result, eval_pairs) -> float:
    from learning.reward.score import score_responses

    chosen = score_responses(result.artifact_dir, [(p.prompt, p.chosen) for p in eval_pairs])
    rejected = score_responses(result.artifact_dir, [(p.prompt, p.rejected) for p in eval_pairs])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(eval_pairs)


def interval_text(accuracy: float, n: int) -> str:
    """An accuracy's Wilson 95% interval over n held-out pairs, as '[low, high]'."""
    from learning.reward.evaluate import wilson_interval

    low, high = wilson_interval(accuracy * n, n)
    return f"[{low:.3f}, {high:.3f}]"


def accuracy(pairs, args, workdir: Path) -> None:
    """(b): held-out accuracy by question split: BT, Davidson and the frozen probe."""
    from learning.data import split_by_group

    print(f"\n(b) held-out accuracy on qa_feedback, split by question ({args.eval_fraction:.0%} of questions held out)")
    rows = []
    for seed in range(args.seed, args.seed + args.splits):
        train, held_out = split_by_group(pairs, eval_fraction=args.eval_fraction, seed=seed)
        eval_pairs = [p for p in held_out if not p.tie]
        train_no_ties = [p for p in train if not p.tie]
        figures = {
            "split seed": seed,
            "train pairs": len(train_no_ties),
            "train ties": len(train) - len(train_no_ties),
            "held-out pairs": len(eval_pairs),
        }
        for loss in args.losses:
            result = train_ours(train, args, output_dir=workdir / f"acc-{loss}-{seed}", label=f"{loss} (split {seed})", loss=loss)
            figures[f"ours {loss}"] = heldout_accuracy(result, eval_pairs)
            figures[f"ours {loss} 95% CI"] = interval_text(figures[f"ours {loss}"], len(eval_pairs))
        figures["frozen probe"] = probe_accuracy(train_no_ties, eval_pairs, args)
        figures["frozen probe 95% CI"] = interval_text(figures["frozen probe"], len(eval_pairs))
        rows.append(figures)
        print("    " + ", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in figures.items()))
    if len(rows) > 1:
        keys = [k for k in rows[0] if (k.startswith("ours") or k == "frozen probe") and not k.endswith("CI")]
        print("    mean over splits: " + ", ".join(f"{k}: {sum(r[k] for r in rows) / len(rows):.3f}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm", help="backbone: alias, local folder or cached HF id (default minilm)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="qa_feedback JSON file")
    parser.add_argument("--max-records", type=int, default=None, help="use only the first N records")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--throughput-pairs", type=int, default=1024, help="pairs for the speed comparison")
    parser.add_argument("--losses", default="bt,davidson", help="comma-separated: bt, davidson")
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--splits", type=int, default=1, help="how many question splits (seeds) to average")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    args.losses = [loss.strip() for loss in args.losses.split(",") if loss.strip()]

    import torch

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    pairs = load_qa_feedback(args.data, args.max_records)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"reward_train benchmark: model {args.model}, {len(pairs)} preferences ({sum(p.tie for p in pairs)} ties) "
        f"from {args.data.name}, on {device}"
    )
    with tempfile.TemporaryDirectory(prefix="reward-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_throughput:
            throughput(pairs, args, workdir)
        if not args.skip_accuracy:
            accuracy(pairs, args, workdir)


if __name__ == "__main__":
    main()
