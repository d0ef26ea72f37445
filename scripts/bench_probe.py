"""Evaluation speed, side by side in one run: unsuprnn's kNN (FAISS / torch) and k-means (FAISS)
against scikit-learn's brute-force NearestNeighbors and KMeans on the same random data.

    python scripts/bench_probe.py                 # 10,000 queries x 60,000 bank x 512 dims, k=20; k-means k=10
    python scripts/bench_probe.py --device cpu --quick

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unsuprnn.devices import resolve_device  # noqa: E402
from unsuprnn.evaluate.kmeans import kmeans  # noqa: E402
from unsuprnn.evaluate.knn import faiss_has_gpu, knn_search  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def kmeans_backend(device: torch.device) -> str:
    """Which backend `kmeans(..., device=device)` picks, for the record."""
    if device.type != "cuda":
        return "faiss-cpu"
    return "faiss-gpu" if faiss_has_gpu() else "torch-cuda"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bank", type=int, default=60000)
    p.add_argument("--queries", type=int, default=10000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--clusters", type=int, default=10)
    p.add_argument("--kmeans-iters", type=int, default=20)
    p.add_argument("--restarts", type=int, default=5, help="k-means restarts on both sides (the probe's default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a tenth of the sizes: seconds on a CPU")
    args = p.parse_args()
    if args.quick:
        args.bank, args.queries = args.bank // 10, args.queries // 10
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    # clustered data, so that k-means has structure to find
    centres = torch.randn(args.clusters, args.dim, generator=g) * 3
    bank = centres[torch.randint(0, args.clusters, (args.bank,), generator=g)] + torch.randn(args.bank, args.dim, generator=g)
    query = centres[torch.randint(0, args.clusters, (args.queries,), generator=g)] + torch.randn(args.queries, args.dim, generator=g)

    from sklearn.cluster import KMeans
    from sklearn.neighbors import NearestNeighbors

    (s_ours, i_ours), t_ours = timed(lambda: knn_search(query.to(device), bank.to(device), args.k))
    def sk_knn():
        nn = NearestNeighbors(n_neighbors=args.k, algorithm="brute", metric="cosine").fit(bank.numpy())
        return nn.kneighbors(query.numpy())
    (d_sk, i_sk), t_sk = timed(sk_knn)
    agree = float((i_ours.numpy() == i_sk).mean())

    x = torch.nn.functional.normalize(bank, dim=1)
    (_, _, obj_ours), tk_ours = timed(lambda: kmeans(x, args.clusters, seed=0, restarts=args.restarts,
                                                     niter=args.kmeans_iters, device=device))
    km, tk_sk = timed(lambda: KMeans(args.clusters, n_init=args.restarts, max_iter=args.kmeans_iters, tol=0, algorithm="lloyd",
                                     random_state=0).fit(x.numpy()))
    res = {"bench": "probe", "device": str(device), "bank": args.bank, "queries": args.queries, "dim": args.dim,
           "k": args.k, "knn_s": round(t_ours, 3), "sklearn_knn_s": round(t_sk, 3),
           "knn_speedup": round(t_sk / t_ours, 2), "knn_index_agreement": round(agree, 4),
           "kmeans_s": round(tk_ours, 3), "sklearn_kmeans_s": round(tk_sk, 3),
           "kmeans_speedup": round(tk_sk / tk_ours, 2), "kmeans_objective": round(obj_ours, 2),
           "sklearn_kmeans_objective": round(float(km.inertia_), 2), "kmeans_iters": args.kmeans_iters, "restarts": args.restarts,
           "threads": torch.get_num_threads(), "kmeans_backend": kmeans_backend(device)}
    for k in ("knn_s", "sklearn_knn_s", "knn_speedup", "kmeans_s", "sklearn_kmeans_s", "kmeans_speedup"):
        print(f"{k:>18}: {res[k]}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
