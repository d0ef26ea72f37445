"""How much the probe's k-means figure moves between seeds, for a few restart counts, on one run's
test embeddings and on raw pixels of the same images (the question behind the restart default).

    python scripts/kmeans_spread.py --run runs/digits --seeds 10 --restarts 1,5,20

For each feature set and restart count: the cluster accuracy kept by `kmeans_scores` (the restart with
the lowest objective) for seeds 0..S-1, with its min, max and standard deviation over seeds. Prints a
table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unsuprnn.runs.checkpoint import load_run_encoder  # noqa: E402
from unsuprnn.evaluate.kmeans import kmeans_scores  # noqa: E402
from unsuprnn.evaluate.baselines import raw_features  # noqa: E402
from unsuprnn.evaluate.probe import load_probe_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--restarts", default="1,5,20")
    args = ap.parse_args()

    encoder, pipeline, cfg, info = load_run_encoder(Path(args.run), "cpu")
    data = load_probe_data(cfg, tuple(info["shape"]))
    sets = {"encoder": data.embed(encoder, pipeline, "cpu")[1],
            "raw": raw_features(pipeline, data.query_images, data.query_idx)}
    k = len(data.classes)
    rows, t0 = [], time.perf_counter()
    print(f"{len(data.query_idx)} queries, k={k}, seeds 0..{args.seeds - 1}")
    print(f"{'features':10s} {'restarts':>8s} {'mean':>7s} {'min':>7s} {'max':>7s} {'std':>6s}")
    for name, x in sets.items():
        for r in map(int, args.restarts.split(",")):
            acc = [kmeans_scores(x, data.query_y, k, seed=s, restarts=r)["accuracy"] for s in range(args.seeds)]
            row = {"features": name, "restarts": r, "mean": float(np.mean(acc)), "min": float(np.min(acc)),
                   "max": float(np.max(acc)), "std": float(np.std(acc))}
            rows.append(row)
            print(f"{name:10s} {r:8d} {row['mean']:7.2f} {row['min']:7.2f} {row['max']:7.2f} {row['std']:6.2f}")
    print(json.dumps({"run": args.run, "queries": len(data.query_idx), "k": k, "seeds": args.seeds,
                      "seconds": time.perf_counter() - t0, "rows": rows}))


if __name__ == "__main__":
    main()
