"""Selection speed: our blocked exact greedy D-optimal against eager and plain lazy greedy.

Run by hand (never from the tests); it prints its figures and asserts nothing:

    .venv/bin/python bench/select_speed.py                      # 1,000 of 100,000 at d = 256 and 512
    .venv/bin/python bench/select_speed.py --pool 20000 --picks 200 --dims 128   # quick

The pool is low-rank like real embeddings (a `--rank`-dim signal in d dims plus a little noise),
float32, with σ' weights from random margins. Each method picks the same k; the picks are
compared with eager greedy's (one pass over the pool per pick, the reference). Plain lazy greedy
(a max-heap of stale gains) re-evaluates so many candidates per pick on such features that it
runs only `--lazy-picks` picks; its time is scaled to k picks and marked as such.
Goal (issue 12): our greedy picks 1,000 of 100,000 at d = 512 in at most 5 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.select.common import sigmoid_weights  # noqa: E402
from learning.select.d_optimal import eager_greedy_d_optimal, greedy_d_optimal, lazy_greedy_d_optimal  # noqa: E402


def pool(n: int, d: int, rank: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, rank), dtype=np.float32) @ rng.standard_normal((rank, d), dtype=np.float32)
    return signal / np.sqrt(rank) + np.float32(0.05) * rng.standard_normal((n, d), dtype=np.float32)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--picks", type=int, default=1000)
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--lazy-picks", type=int, default=20, help="picks plain lazy greedy runs (0: skip it)")
    parser.add_argument("--shortlist", type=int, default=1024)
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}" for i in threadpool_info())
    except ImportError:
        blas = "unknown"
    print(f"pool {args.pool:,}, picks {args.picks:,}, signal rank {args.rank}, float32; BLAS: {blas}")
    for d in args.dims:
        z = pool(args.pool, d, args.rank, args.seed)
        w = sigmoid_weights(np.random.default_rng(args.seed + 1).standard_normal(args.pool) * 2)
        ours, t_ours = timed(greedy_d_optimal, z, args.picks, weights=w, shortlist=args.shortlist, block=args.block)
        eager, t_eager = timed(eager_greedy_d_optimal, z, args.picks, weights=w)
        same = int(np.sum(ours.indices == eager.indices))
        print(f"\nd = {d}")
        print(f"  ours (blocked exact greedy)   {t_ours:8.2f} s   goal at d = 512: <= 5 s")
        print(f"  eager exact greedy            {t_eager:8.2f} s   ratio eager / ours: {t_eager / t_ours:.1f}x")
        print(f"  same picks in the same order: {same} of {args.picks}")
        if args.lazy_picks:
            k = min(args.lazy_picks, args.picks)
            (lazy, evaluations), t_lazy = timed(lazy_greedy_d_optimal, z, k, weights=w)
            scaled = t_lazy * args.picks / k
            agree = int(np.sum(lazy.indices == eager.indices[:k]))
            print(
                f"  plain lazy greedy             {scaled:8.2f} s   (scaled from {k} picks in {t_lazy:.2f} s; "
                f"{evaluations / k:,.0f} re-evaluations per pick; ratio lazy / ours: {scaled / t_ours:.1f}x; "
                f"same picks: {agree} of {k})"
            )


if __name__ == "__main__":
    main()
