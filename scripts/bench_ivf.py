"""Approximate kNN with FAISS IVF against exact search on one generated bank (default 1,000,000 x 128):
recall@k of IVF's neighbours among the exact ones, and the search times, for several nprobe.

    python scripts/bench_ivf.py                       # 1,000,000 x 128 bank, 10,000 queries, k=10
    python scripts/bench_ivf.py --quick
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unsuprnn.evaluate.knn import build_index  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bank", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", default="1,4,16,64")
    p.add_argument("--quick", action="store_true", help="100,000 x 128 bank, 1,000 queries, nlist 256")
    args = p.parse_args()
    if args.quick:
        args.bank, args.queries, args.nlist = 100_000, 1_000, 256
    rng = np.random.default_rng(0)
    # clustered, like embeddings: 1,000 centres with noise, L2-normalized
    centres = rng.standard_normal((1000, args.dim), dtype=np.float32)
    def draw(n):
        x = centres[rng.integers(0, 1000, n)] + 0.5 * rng.standard_normal((n, args.dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    bank, query = draw(args.bank), draw(args.queries)

    t0 = time.perf_counter()
    flat = build_index(bank, "flat")
    _, exact = flat.search(query, args.k)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    ivf = build_index(bank, "ivf", nlist=args.nlist, nprobe=1)
    t_build = time.perf_counter() - t0
    rows = []
    for nprobe in [int(v) for v in args.nprobe.split(",")]:
        ivf.nprobe = nprobe
        t0 = time.perf_counter()
        _, approx = ivf.search(query, args.k)
        t = time.perf_counter() - t0
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(exact, approx)])
        rows.append({"nprobe": nprobe, "recall_at_k": round(float(recall), 4), "search_s": round(t, 3),
                     "speedup_vs_exact": round(t_exact / t, 1)})
    res = {"bench": "ivf", "bank": args.bank, "queries": args.queries, "dim": args.dim, "k": args.k,
           "nlist": args.nlist, "exact_s": round(t_exact, 3), "ivf_build_s": round(t_build, 3), "ivf": rows}
    print(f"exact (flat) search: {t_exact:.2f} s; IVF build (train + add): {t_build:.2f} s")
    for r in rows:
        print(f"  nprobe {r['nprobe']:>4}: recall@{args.k} {r['recall_at_k']:.4f}, {r['search_s']:.3f} s "
              f"({r['speedup_vs_exact']}x faster than exact)")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
