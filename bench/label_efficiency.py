"""Label efficiency, fast mode: random vs uncertainty vs D-optimal on real qa_feedback preferences.

Run by hand (never from the tests); it prints its figures and asserts nothing:

    .venv/bin/python bench/label_efficiency.py                       # 5 seeds, both modes
    .venv/bin/python bench/label_efficiency.py --seeds 3 --budget 300   # quicker

Data: ../shared/data/qa_feedback_dev_first250.json, split by question (`--test-questions` held
out, the rest the pool). Each question's four answers give six pairs. Features: MiniLM-L6
mean-pooled (question, answer) embeddings (`learning.features`, cached under var/bench/), a
pair's feature the difference of its answers'.

Two sources of truth (ALGORITHMS.md §4):
- gold (the headline): a gold linear reward fitted on every real label of the file, scaled so its
  margins have standard deviation `--gold-scale`; labels drawn as Bernoulli(σ(Δ)) with `--flip`
  flips; held-out accuracy against the gold's preferred answer;
- real: the human labels themselves, revealed only when asked (tied pairs are no candidates);
  held-out accuracy on the test questions' untied pairs.
The head is a logistic Bradley-Terry head on the frozen features, refitted after every round.
Printed: the labels each strategy needs to reach random's final mean accuracy, as a fraction of
random's (issue 12's goal: D-optimal ≤ 60%), and the curves as CSV and PNG under `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The loop multiplies small matrices: BLAS threads only contend for them (27x slower here with 2).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from learning.features import FeatureCache, compute_features, load_feature_backbone  # noqa: E402
from learning.select import DOptimalParams, RandomParams, UncertaintyParams  # noqa: E402
from learning.simulate import GoldLabels, RevealedLabels, fit_logistic, labels_to_reach, plot, simulate, summarise, write_csv  # noqa: E402

PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]  # qa_feedback's order of `preference`
LABEL = {1: 1.0, 2: -1.0, 0: np.nan}  # first better, second better, tie


def load_features(records: list[dict], model: str, cache_dir: Path) -> np.ndarray:
    """(records, 4, dims) features of each (question, prediction k), computed once and cached."""
    cache = FeatureCache(cache_dir / FeatureCache.folder_name(model), model=model)
    ids = list(range(len(records) * 4))
    if cache.missing(ids):
        tokenizer, backbone = load_feature_backbone(model)
        items = [([{"role": "user", "content": r["question"]}], r[f"prediction {k + 1}"]) for r in records for k in range(4)]
        started = time.perf_counter()
        cache.store(ids, compute_features(backbone, tokenizer, items, max_length=256, batch_size=32))
        print(f"features: {len(items)} answers with {model} in {time.perf_counter() - started:.0f} s")
    return cache.load(ids)[1].reshape(len(records), 4, -1).astype(np.float64)


def pair_rows(features: np.ndarray, records: list[dict], questions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.stack([features[q, a] - features[q, b] for q in questions for a, b in PAIRS])
    y = np.asarray([LABEL[records[q]["preference"][p]] for q in questions for p in range(6)])
    return z, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "qa_feedback_dev_first250.json"))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test-questions", type=int, default=50)
    parser.add_argument("--first-round", type=int, default=20)
    parser.add_argument("--round-size", type=int, default=20)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--gold-scale", type=float, default=3.0, help="std of the gold reward's margins")
    parser.add_argument("--flip", type=float, default=0.0)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--projection", type=int, default=0, help="D-optimal's projection dims (0: none)")
    parser.add_argument("--modes", nargs="+", default=["gold", "real"], choices=["gold", "real"])
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "label_efficiency"))
    args = parser.parse_args()

    records = json.loads(Path(args.data).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    features = load_features(records, args.model, ROOT / "var" / "bench" / "features")
    order = np.random.default_rng(12345).permutation(len(records))  # the split by question, fixed
    test_q, pool_q = order[: args.test_questions], order[args.test_questions :]
    pool_z, pool_y = pair_rows(features, records, pool_q)
    test_z, test_y = pair_rows(features, records, test_q)
    rounds = [args.first_round] + [args.round_size] * ((args.budget - args.first_round) // args.round_size)
    strategies = {
        "random": RandomParams(),
        "uncertainty": UncertaintyParams(),
        "d_optimal": DOptimalParams(lam=args.l2, projection_dims=args.projection or None),  # the head's prior is V's λI
    }
    print(f"pool: {len(pool_q)} questions, {len(pool_z)} pairs; test: {len(test_q)} questions; dims {pool_z.shape[1]}")
    print(f"rounds: {args.first_round} then {args.round_size} up to {sum(rounds)} labels; {args.seeds} seeds; l2 {args.l2}")

    for mode in args.modes:
        curves = []
        started = time.perf_counter()
        if mode == "gold":
            known = ~np.isnan(np.concatenate([pool_y, test_y]))
            all_z = np.concatenate([pool_z, test_z])
            theta = fit_logistic(all_z[known], np.concatenate([pool_y, test_y])[known], l2=args.l2)
            scale = args.gold_scale / float(np.std(all_z @ theta))
            gold_pool, gold_test = pool_z @ theta * scale, test_z @ theta * scale
            truth, probability, evaluated = np.sign(gold_test), 1 / (1 + np.exp(-gold_test)), test_z
        else:
            untied = ~np.isnan(test_y)
            truth, probability, evaluated = test_y[untied], None, test_z[untied]
        for name, params in strategies.items():
            for seed in range(args.seeds):
                oracle = GoldLabels(gold_pool, flip=args.flip, seed=seed) if mode == "gold" else RevealedLabels(pool_y)
                curves.append(
                    simulate(
                        params,
                        pool_z=pool_z,
                        oracle=oracle,
                        test_z=evaluated,
                        test_y=truth,
                        test_p=probability,
                        rounds=rounds,
                        seed=seed,
                        l2=args.l2,
                        strategy=name,
                    )  # fmt: skip
                )
        rows = summarise(curves)
        write_csv(rows, out / f"{mode}.csv")
        plot(rows, out / f"{mode}.png", title=f"qa_feedback, {mode} labels, {args.seeds} seeds (mean, 95% interval)")
        final = [r for r in rows if r.strategy == "random"][-1]
        print(f"\n{mode} mode ({time.perf_counter() - started:.0f} s): random's final accuracy at {final.labels} labels: "
              f"{final.accuracy:.3f} [{final.accuracy_low:.3f}, {final.accuracy_high:.3f}]")  # fmt: skip
        for name in strategies:
            mine = [r for r in rows if r.strategy == name]
            needed = labels_to_reach(rows, name, final.accuracy)
            share = "never" if needed is None else f"{needed} labels = {needed / final.labels:.0%} of random's"
            checkpoints = "  ".join(
                f"{r.labels}: {r.accuracy:.3f}" for r in mine if r.labels in {rounds[0], 100, 200, final.labels}
            )
            print(f"  {name:12s} reaches it with {share:28s} accuracy at {checkpoints}")
        print(f"  curves: {out / f'{mode}.csv'}, {out / f'{mode}.png'}")


if __name__ == "__main__":
    main()
