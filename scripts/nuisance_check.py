"""What the probe's k-means follows (RESULTS.md, "What the groupings follow on the kept-apart sets"): for each
pretraining run, on its test split, the NMI with each pixel property of evaluate/nuisance.py (brightness,
contrast, polarity, colour, the object's size and place) of: the classes, k-means of the encoder's UMAP layout
and k-means of raw pixels' layout (the probe's default grouping of each, K = classes). A grouping that follows
a property more than the classes do is grouping by it. Labels only score.

    python scripts/nuisance_check.py runs/intensity/units-std runs/intensity/artwork-std ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

from unsuprnn.config import ProbeSettings
from unsuprnn.evaluate.baselines import feature_sets
from unsuprnn.evaluate.metrics import clustering_metrics
from unsuprnn.evaluate.nuisance import pixel_properties, property_groups
from unsuprnn.evaluate.probe import cluster_ids, load_probe_data
from unsuprnn.runs.checkpoint import load_run_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args()
    print("| run | grouping | accuracy | NMI with the classes | " + " | ".join(
        ["brightness", "contrast", "polarity", "colour", "size", "place across", "place down"]) + " |")
    print("|---|---|---|---|" + "---|" * 7)
    for run in args.runs:
        loaded = load_run_encoder(run, "cpu")
        cfg, info = loaded[2], loaded[3]
        data = load_probe_data(cfg, tuple(info["shape"]))
        seed, k, y = cfg.train.seed, len(data.classes), data.query_y.numpy()
        images = data.query_images[data.query_idx]
        groups = {name: property_groups(name, prop) for name, prop in pixel_properties(images).items()}
        rows = {"classes": y}
        for name, (bank, query) in feature_sets(loaded, data, ["raw"], torch.device("cpu")).items():
            rows[f"k-means, {name}"] = np.asarray(cluster_ids(None, bank, query, k, ProbeSettings(), seed, "cpu"))
        for name, ids in rows.items():
            nmi = {prop: normalized_mutual_info_score(g, ids) for prop, g in groups.items()}
            cells = [f"{nmi[p]:.2f}" if p in nmi else "-" for p in
                     ("brightness", "contrast", "polarity", "colour", "size", "place across", "place down")]
            acc = clustering_metrics(y, ids)["accuracy"]
            print(f"| {run.name} | {name} | {acc:.1f} | {normalized_mutual_info_score(y, ids):.2f} | "
                  + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
