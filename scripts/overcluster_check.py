"""Over-clustering merged along the kNN graph, against plain k-means, on runs already trained (RESULTS.md,
"Over-clustering"): for each run, the test embeddings of its encoder and raw pixels are grouped into K = classes
by k-means of their UMAP layout (the probe's default), and by k-means into F x K merged along the features' own
kNN graph (evaluate/overcluster.py), for each F; printed as one row per run and feature set. With --pick, also
the modularity of each grouping on the features' own kNN graph (the clustering stage's guard's criterion) and the
accuracy of the grouping it ranks first. Labels only score.

    python scripts/overcluster_check.py runs/real/textures-auto runs/colour/photos96-std --factors 2 3 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from unsuprnn.config import ProbeSettings
from unsuprnn.evaluate.baselines import feature_sets
from unsuprnn.evaluate.kmeans import knn_graph, modularity
from unsuprnn.evaluate.metrics import clustering_metrics
from unsuprnn.evaluate.overcluster import overclustered
from unsuprnn.evaluate.probe import cluster_ids, load_probe_data
from unsuprnn.evaluate.reduce import kmeans_features
from unsuprnn.runs.checkpoint import load_run_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--factors", nargs="+", type=int, default=[2, 3, 5])
    ap.add_argument("--reduce", default="umap", choices=("umap", "none"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pick", action="store_true", help="also rank the groupings by modularity")
    args = ap.parse_args()
    rows = []
    names = ["kmeans"] + [f"{f}K" for f in args.factors]
    extra = " | modularity of each | picked | picked acc" if args.pick else ""
    print(f"| run | features | k-means | " + " | ".join(f"{f}K merged" for f in args.factors) + extra + " |")
    print("|---|---|---|" + "---|" * (len(args.factors) + (3 if args.pick else 0)))
    for run in args.runs:
        t0 = time.perf_counter()
        loaded = load_run_encoder(run, "cpu")
        cfg, info = loaded[2], loaded[3]
        data = load_probe_data(cfg, tuple(info["shape"]))
        seed, k = cfg.train.seed, len(data.classes)
        for name, (bank, query) in feature_sets(loaded, data, ["raw"], torch.device("cpu")).items():
            plain = cluster_ids(None, bank, query, k, ProbeSettings(reduce=args.reduce), seed, "cpu")  # the probe's
            x = kmeans_features(bank, query, args.reduce, seed)  # (the layout cluster_ids fitted: reused)
            y = data.query_y.numpy()
            groupings = {"kmeans": plain}
            for f in args.factors:
                groupings[f"{f}K"] = overclustered(x, query, k, f, seed, 20, normalize=False)
            acc = {key: clustering_metrics(y, ids)["accuracy"] for key, ids in groupings.items()}
            row = {"run": str(run), "features": name, "k": k, **acc}
            line = f"| {run.name} | {name} | " + " | ".join(f"{acc[key]:.1f}" for key in names)
            if args.pick:
                graph = knn_graph(torch.nn.functional.normalize(query.float(), dim=1))
                scores = {key: float(modularity(graph, np.asarray(ids))) for key, ids in groupings.items()}
                picked = max(names, key=lambda key: (scores[key], -names.index(key)))
                row.update(modularity=scores, picked=picked)
                line += " | " + " / ".join(f"{scores[key]:.3f}" for key in names) + f" | {picked} | {acc[picked]:.1f}"
            rows.append(row)
            print(line + " |", flush=True)
        print(f"({run.name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
