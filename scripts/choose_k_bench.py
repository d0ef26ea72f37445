"""Which label-free criterion finds the number of classes? For a run's test embeddings (and raw pixels),
the K each criterion picks within 2..20: the modularity rule `--clusters auto` uses, the silhouette (cosine),
k-means stability (mean ARI between clusterings of two random 80% halves, 5 pairs) and the eigengap of the
kNN graph's normalized Laplacian.

    python scripts/choose_k_bench.py RUN [RUN ...] [--range 2:20]

Prints one line per run and feature set, then one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from unsuprnn.evaluate.baselines import raw_features
from unsuprnn.evaluate.kmeans import choose_k, knn_graph  # noqa: E402
from unsuprnn.names.clusters import parse_k_range  # noqa: E402
from unsuprnn.evaluate.kmeans import kmeans
from unsuprnn.evaluate.probe import load_probe_data
from unsuprnn.runs.checkpoint import load_run_encoder


def silhouette_k(x: torch.Tensor, ks: range, seed: int) -> int:
    from sklearn.metrics import silhouette_score
    scores = {k: silhouette_score(x.numpy(), kmeans(x, k, seed=seed, restarts=3)[0], metric="cosine") for k in ks}
    return max(scores, key=scores.get)


def stability_k(x: torch.Tensor, ks: range, seed: int, pairs: int = 5) -> int:
    from sklearn.metrics import adjusted_rand_score
    g = np.random.default_rng(seed)
    scores = {}
    for k in ks:
        agree = []
        for _ in range(pairs):
            a, b = (np.sort(g.choice(len(x), int(0.8 * len(x)), replace=False)) for _ in range(2))
            both = np.intersect1d(a, b)
            ia = kmeans(x[a], k, seed=seed, restarts=1)[0]
            ib = kmeans(x[b], k, seed=seed + 1, restarts=1)[0]
            agree.append(adjusted_rand_score(ia[np.searchsorted(a, both)], ib[np.searchsorted(b, both)]))
        scores[k] = float(np.mean(agree))
    return max(scores, key=scores.get)


def eigengap_k(x: torch.Tensor, ks: range) -> int:
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh
    w = knn_graph(x)
    d = np.asarray(w.sum(1)).ravel()
    inv = sp.diags(1 / np.sqrt(d))
    lap = sp.eye(w.shape[0]) - inv @ w @ inv
    vals = np.sort(eigsh(lap, k=ks.stop + 1, which="SM", return_eigenvectors=False))
    gaps = {k: vals[k] - vals[k - 1] for k in ks}
    return max(gaps, key=gaps.get)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--range", default="2:20")
    a = ap.parse_args()
    lo, hi = parse_k_range(a.range)
    ks = range(lo, hi + 1)
    rows = []
    for run in a.runs:
        encoder, pipeline, cfg, info = load_run_encoder(run)
        data = load_probe_data(cfg, tuple(info["shape"]))
        seed = cfg.train.seed
        for name, feats in (("encoder", data.embed(encoder, pipeline, "cpu")[1]),
                            ("raw pixels", raw_features(pipeline, data.query_images, data.query_idx))):
            x = torch.nn.functional.normalize(feats.float(), dim=1)
            row = {"run": run, "features": name, "points": len(x), "classes": len(data.classes),
                   "modularity": choose_k(x, (lo, hi), seed)[0], "silhouette": silhouette_k(x, ks, seed),
                   "stability": stability_k(x, ks, seed), "eigengap": eigengap_k(x, ks)}
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
