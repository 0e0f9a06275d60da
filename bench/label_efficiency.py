"""Label efficiency, fast mode: random vs uncertainty vs D-optimal on real qa_feedback preferences.

Run by hand (never from the tests); it prints its figures and asserts nothing:

    .venv/bin/python bench/label_efficiency.py                         # 10 seeds, both modes
    .venv/bin/python bench/label_efficiency.py --seeds 3 --modes gold   # quicker

Data: ../shared/data/qa_feedback_dev_first250.json, split by question (`--test-questions` held
out, the rest the pool; `--validation-questions` of the pool's questions are carved out to choose
the L2 weight). Each question's four answers give six pairs. Features: MiniLM-L6 mean-pooled
(question, answer) embeddings (`learning.features`, cached under var/bench/), a pair's feature the
difference of its answers'.

Two sources of truth (ALGORITHMS.md §4):
- gold (the headline): `learning.simulate.fit_gold`, a logistic head fitted on every real label
  of the file with L2 1, and τ such that the margins Δ/τ have standard deviation `--gold-scale`
  (3); labels drawn as Bernoulli(σ(Δ/τ)) with `--flip` flips; held-out accuracy against the gold's
  preferred answer;
- real: the human labels themselves, revealed only when asked (tied pairs are no candidates);
  held-out accuracy on the test questions' untied pairs.
The head is a logistic Bradley-Terry head on the frozen features, refitted after every round of
`--round-size` labels. Its L2 weight, shared by every strategy and used as D-optimal's prior λ,
is chosen per mode before the test split is read (`--l2 auto`): the value of `L2_GRID` at which
random, trained on the pool less the validation questions, ends with the best mean accuracy on
the validation questions. Printed: the labels each strategy needs to reach random's final mean
accuracy, as a share of random's, with a 95% bootstrap interval over seeds (issue 12's goal:
D-optimal ≤ 60%), and the curves as CSV and PNG under `--out`.

`--validate-only` explores without the test split: random and D-optimal run on the pool less the
validation questions and are scored on the validation questions.
"""

from __future__ import annotations

import argparse
import functools
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
from learning.simulate import (  # noqa: E402
    GoldLabels,
    RevealedLabels,
    choose_l2,
    fit_gold,
    labels_share_interval,
    plot,
    simulate,
    summarise,
    write_csv,
)

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


L2_GRID = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]


def run_strategies(strategies: dict, seeds: int, *, pool_z, make_oracle, test_z, test_y, test_p, rounds, l2) -> list:
    """Every strategy for every seed; seed s of each strategy sees the same oracle draws."""
    curves = []
    for name, params in strategies.items():
        for seed in range(seeds):
            curves.append(
                simulate(
                    params,
                    pool_z=pool_z,
                    oracle=make_oracle(seed),
                    test_z=test_z,
                    test_y=test_y,
                    test_p=test_p,
                    rounds=rounds,
                    seed=seed,
                    l2=l2,
                    strategy=name,
                )
            )
    return curves


def oracle_for(mode: str, labels: np.ndarray, flip: float):
    """A seed's oracle: gold labels drawn from the margins, or the human labels revealed when asked."""
    if mode == "gold":
        return lambda seed: GoldLabels(labels, flip=flip, seed=seed)
    return lambda seed: RevealedLabels(labels)


def final_accuracy(l2: float, strategies: dict, seeds: int, **run) -> float:
    """The mean over seeds of the last accuracy of the (one) strategy: what the L2 is chosen on."""
    return float(np.mean([c.accuracy[-1] for c in run_strategies(strategies, seeds, l2=l2, **run)]))


def percent(share: float) -> str:
    return "never" if share == np.inf else f"{share:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "qa_feedback_dev_first250.json"))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--test-questions", type=int, default=50)
    parser.add_argument("--validation-questions", type=int, default=50, help="carved from the pool to choose the L2")
    parser.add_argument("--round-size", type=int, default=10, help="labels per round, the first included")
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--gold-scale", type=float, default=3.0, help="std of the gold's margins Δ/τ (fixes τ)")
    parser.add_argument("--flip", type=float, default=0.0)
    parser.add_argument("--l2", default="auto", help="the heads' L2 weight and D-optimal's λ; auto: chosen on validation")
    parser.add_argument("--projection", type=int, default=0, help="D-optimal's projection dims (0: none)")
    parser.add_argument(
        "--validate-only", action="store_true",
        help="explore without the test split: random and D-optimal run on the pool less the validation "
        "questions and are scored on the validation questions",
    )  # fmt: skip
    parser.add_argument("--modes", nargs="+", default=["gold", "real"], choices=["gold", "real"])
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "label_efficiency"))
    args = parser.parse_args()

    records = json.loads(Path(args.data).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    features = load_features(records, args.model, ROOT / "var" / "bench" / "features")
    order = np.random.default_rng(12345).permutation(len(records))  # the split by question, fixed
    test_q, pool_q = order[: args.test_questions], order[args.test_questions :]
    inner = np.random.default_rng(54321).permutation(pool_q)  # the validation questions: part of the pool
    val_q, fit_q = inner[: args.validation_questions], inner[args.validation_questions :]
    pool_z = pair_rows(features, records, pool_q)[0]
    rounds = [args.round_size] * (args.budget // args.round_size)
    print(f"pool: {len(pool_q)} questions, {len(pool_z)} pairs ({len(val_q)} of its questions for validation); "
          f"test: {len(test_q)} questions; dims {pool_z.shape[1]}")  # fmt: skip
    print(f"rounds of {args.round_size} up to {sum(rounds)} labels; {args.seeds} seeds")
    # The gold (ALGORITHMS.md §4), fixed before anything runs: a head on every label of the file.
    all_z, all_y = pair_rows(features, records, np.arange(len(records)))
    gold_theta, tau = fit_gold(all_z, all_y, margin_std=args.gold_scale)

    def pool_of(questions: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """A pool's pair features and what its oracle answers from: gold margins Δ/τ, or the human labels."""
        z, y = pair_rows(features, records, questions)
        return z, (z @ gold_theta / tau if mode == "gold" else y)

    def scored_on(questions: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Held-out pairs, the labels accuracy is counted against, and the gold's probabilities (gold mode)."""
        z, labels = pool_of(questions, mode)
        if mode == "gold":
            return z, np.sign(labels), 1 / (1 + np.exp(-labels))
        untied = ~np.isnan(labels)
        return z[untied], labels[untied], None

    for mode in args.modes:
        started = time.perf_counter()

        if args.l2 == "auto":
            # The rule: the L2 at which random, trained on the pool less the validation questions,
            # ends with the best mean accuracy on the validation questions. The test split is not read.
            fit_z, fit_labels = pool_of(fit_q, mode)
            val_z, val_y, val_p = scored_on(val_q, mode)
            validation = functools.partial(
                final_accuracy, strategies={"random": RandomParams()}, seeds=args.seeds, pool_z=fit_z,
                make_oracle=oracle_for(mode, fit_labels, args.flip), test_z=val_z, test_y=val_y, test_p=val_p, rounds=rounds,
            )  # fmt: skip
            l2, scores = choose_l2(validation, L2_GRID)
            print(f"\n{mode}: L2 chosen on validation (random's final accuracy): "
                  + "  ".join(f"{k:g}: {v:.3f}" for k, v in scores.items()) + f"  -> {l2:g}")  # fmt: skip
        else:
            l2 = float(args.l2)
        d_optimal = DOptimalParams(lam=l2, projection_dims=args.projection or None)  # the head's prior is V's λI
        strategies = {"random": RandomParams(), "uncertainty": UncertaintyParams(), "d_optimal": d_optimal}
        if args.validate_only:  # the test split is never read: pool less validation, scored on validation
            del strategies["uncertainty"]
            run_q, scored_q, split = fit_q, val_q, "validation"
        else:
            run_q, scored_q, split = pool_q, test_q, "test"
        print(f"\n{mode}: pool {len(run_q)} questions, scored on the {split} split ({len(scored_q)} questions); "
              f"D-optimal {d_optimal}")  # fmt: skip
        eval_z, eval_y, eval_p = scored_on(scored_q, mode)
        pool_z, pool_labels = pool_of(run_q, mode)
        curves = run_strategies(
            strategies, args.seeds, pool_z=pool_z, make_oracle=oracle_for(mode, pool_labels, args.flip),
            test_z=eval_z, test_y=eval_y, test_p=eval_p, rounds=rounds, l2=l2,
        )  # fmt: skip
        rows = summarise(curves)
        stem = f"{mode}_validation" if args.validate_only else mode
        write_csv(rows, out / f"{stem}.csv")
        title = f"qa_feedback, {mode} labels, {split}, {args.seeds} seeds, L2 {l2:g} (mean, 95% interval)"
        plot(rows, out / f"{stem}.png", title=title)
        final = [r for r in rows if r.strategy == "random"][-1]
        print(f"\n{mode} mode ({time.perf_counter() - started:.0f} s), L2 {l2:g}: random's final accuracy at "
              f"{final.labels} labels: {final.accuracy:.3f} [{final.accuracy_low:.3f}, {final.accuracy_high:.3f}]")  # fmt: skip
        shares = {name: labels_share_interval(curves, name) for name in strategies}  # 2000 resamples each: once
        for name in strategies:
            mine = [r for r in rows if r.strategy == name]
            share, low, high = shares[name]
            text = "never" if share == np.inf else f"{share:.0%} of random's labels [{percent(low)}, {percent(high)}]"
            checkpoints = "  ".join(
                f"{r.labels}: {r.accuracy:.3f} [{r.accuracy_low:.3f}, {r.accuracy_high:.3f}]"
                for r in mine
                if r.labels in {rounds[0], 100, 200, final.labels}
            )
            print(f"  {name:12s} reaches it with {text:32s} accuracy at {checkpoints}")
        if mode == "gold":
            share, low, high = shares["d_optimal"]
            needs = "never reaches it" if share == np.inf else f"needs {percent(share)} of random's labels"
            print(f"  HEADLINE ({split}): D-optimal {needs} (95% bootstrap interval over seeds "
                  f"[{percent(low)}, {percent(high)}]); goal <= 60%: {'met' if share <= 0.6 else 'not met'}")  # fmt: skip
        print(f"  curves: {out / f'{stem}.csv'}, {out / f'{stem}.png'}")


if __name__ == "__main__":
    main()
