"""Reward-model defaults sweep: learning rate × epochs, scored on a validation split of training questions.

Run by hand (never from the tests); it prints its figures and asserts nothing:

    .venv/bin/python bench/reward_sweep.py                                   # 3 lrs x 2 epoch settings
    .venv/bin/python bench/reward_sweep.py --max-records 120 --learning-rates 2e-5,1e-4 --epochs 1   # quick

The pairwise preferences of qa_feedback (``--data``) are split by question exactly as
``reward_train.py`` splits them (``--test-fraction`` 20%, seed 0): that test part is never read
here, so it stays an honest held-out set for the chosen defaults. The remaining questions are
split again by question (``--validation-fraction`` 25%, seed 1) into fit and validation parts.
Every setting trains Bradley–Terry (ties dropped) on the fit part from the same seed and is
scored on the validation part's non-tied pairs: accuracy with its Wilson 95% interval, and the
ratio to the current default's accuracy.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reward_train import DEFAULT_DATA, heldout_accuracy, load_qa_feedback, train_ours  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--max-records", type=int, default=None, help="use only the first N records")
    parser.add_argument("--learning-rates", default="2e-5,5e-5,1e-4")
    parser.add_argument("--epochs", default="1,2", help="comma-separated epoch settings")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per setting")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--validation-fraction", type=float, default=0.25)
    args = parser.parse_args()

    from learning.data import split_by_group
    from learning.reward.evaluate import wilson_interval
    from learning.reward.train import RewardTrainConfig

    pairs = load_qa_feedback(args.data, args.max_records)
    training_part, _test_part = split_by_group(pairs, eval_fraction=args.test_fraction, seed=0)  # test: never read
    fit, validation = split_by_group(training_part, eval_fraction=args.validation_fraction, seed=1)
    validation = [p for p in validation if not p.tie]
    print(
        f"reward_sweep: {args.model}, {len(fit)} fit preferences ({sum(p.tie for p in fit)} ties, dropped by BT), "
        f"{len(validation)} validation pairs; batch {args.batch_size}, max_length {args.max_length}, {args.seeds} seed(s)"
    )
    default = (RewardTrainConfig.learning_rate, RewardTrainConfig.epochs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reward-sweep-") as tmp:
        settings = itertools.product([float(v) for v in args.learning_rates.split(",")], [int(v) for v in args.epochs.split(",")])
        for learning_rate, epochs in settings:
            accuracies, started = [], time.perf_counter()
            for seed in range(args.seeds):
                run = argparse.Namespace(**{**vars(args), "learning_rate": learning_rate, "seed": seed, "epochs": epochs})
                result = train_ours(fit, run, output_dir=Path(tmp) / f"{learning_rate}-{epochs}-{seed}", label="sweep")
                accuracies.append(heldout_accuracy(result, validation))
            accuracy = sum(accuracies) / len(accuracies)
            low, high = wilson_interval(accuracy * len(validation) * args.seeds, len(validation) * args.seeds)
            rows.append((learning_rate, epochs, accuracy, low, high))
            print(
                f"    lr {learning_rate:.0e}, {epochs} epoch(s): validation accuracy {accuracy:.3f} "
                f"[{low:.3f}, {high:.3f}]  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    baseline = next((r[2] for r in rows if (r[0], r[1]) == default), None)
    best = max(rows, key=lambda r: r[2])
    print(f"best: lr {best[0]:.0e}, {best[1]} epoch(s), accuracy {best[2]:.3f} [{best[3]:.3f}, {best[4]:.3f}]")
    if baseline:
        print(f"accuracy as a ratio to the old default (lr {default[0]:.0e}, {default[1]} epochs):")
        for learning_rate, epochs, accuracy, *_ in rows:
            print(f"    lr {learning_rate:.0e}, {epochs} epoch(s): {accuracy / baseline:.3f}")


if __name__ == "__main__":
    main()
