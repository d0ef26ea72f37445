"""Issue 38's targets in one table (RESULTS.md, "Issue 38's targets"): for each probed cluster run, kNN top-1,
k-means of the probe's default layout and the clustering stage, each beside the figure its target names (raw
pixels; raw pixels; UMAP of raw pixels), the margins, whether each target holds, and the CPU time the run's
pretraining and clustering stage spent (their metrics.json `train_seconds`).

    unsuprnn probe --run RUN-cluster --baselines raw,umap --json out/NAME.probe.json
    python scripts/targets_table.py "dev:photographs 96 px=out/photos96.probe.json" "apart:textures=..." ...

Each argument is ROLE:NAME=PROBE_JSON; the probe.json's `run` names the cluster run, whose metrics.json and
meta.json name the pretraining run. Targets (issue 38): kNN >= raw + 3, k-means >= raw + 10, stage >= UMAP-raw + 10.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = {"knn": 3.0, "kmeans": 10.0, "stage": 10.0}


def figures(probe: dict) -> dict:
    """{"knn" | "kmeans" | "stage": (the encoder's figure, the figure its target is measured against)}."""
    res = probe["results"]
    enc, raw, umap = res["encoder"], res["raw"], res["umap"]
    return {"knn": (enc["knn"]["weighted_top1"], raw["knn"]["weighted_top1"]),
            "kmeans": (enc["kmeans"]["accuracy"], raw["kmeans"]["accuracy"]),
            "stage": (enc.get("head", {}).get("accuracy"), umap["kmeans"]["accuracy"])}


def cpu_minutes(cluster_run: Path) -> float | None:
    """Minutes of training spent by the cluster run and the pretraining run it started from."""
    try:
        stage = json.loads((cluster_run / "metrics.json").read_text())
        source = Path(json.loads((cluster_run / "meta.json").read_text())["source_run"])
        pretrain = json.loads((source / "metrics.json").read_text())
        return (stage["train_seconds"] + pretrain["train_seconds"]) / 60
    except (OSError, KeyError, ValueError):
        return None


def row(role: str, name: str, probe_path: Path) -> str:
    probe = json.loads(probe_path.read_text())
    cells = []
    for key, (mine, theirs) in figures(probe).items():
        if mine is None:
            cells.append("-")
            continue
        margin = mine - theirs
        mark = "holds" if margin >= TARGETS[key] else "**fails**"
        cells.append(f"{mine:.1f} / {theirs:.1f} ({margin:+.1f}, {mark})")
    minutes = cpu_minutes(Path(probe["run"]))
    return (f"| {name} | {role} | {probe['query_size']} | " + " | ".join(cells)
            + f" | {'-' if minutes is None else f'{minutes:.1f}'} |")


if __name__ == "__main__":
    print("| set | role | test images | kNN enc / raw | k-means enc / raw | stage / UMAP-raw | CPU minutes |")
    print("|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        role, rest = arg.split(":", 1)
        name, path = rest.rsplit("=", 1)
        print(row(role, name, Path(path)))
