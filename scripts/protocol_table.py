"""Summarise a protocol directory (scripts/mnist_protocol.sh) as Markdown tables and one JSON line.

    python scripts/protocol_table.py runs/protocol
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(root: Path) -> None:
    rows, summary = [], {}
    for run in ("contrastive", "autoencoder", "supervised"):
        probe_file = root / f"{run}-probe.json"
        if not probe_file.is_file():
            continue
        probe = json.loads(probe_file.read_text())
        metrics = json.loads((root / run / "metrics.json").read_text())
        for name, res in probe["results"].items():
            if run == "supervised" and name != "encoder":
                continue
            label = run if name == "encoder" else f"{name} (baseline)"
            if name != "encoder" and label in (r[0] for r in rows):
                continue
            r = [label, res["knn"]["weighted_top1"], res["linear"]["accuracy"], res["linear"]["f1"],
                 res["kmeans"]["nmi"], res["kmeans"]["ari"], res["kmeans"]["accuracy"]]
            rows.append(r)
            summary[label] = dict(zip(["knn_top1", "linear_top1", "macro_f1", "nmi", "ari", "cluster_acc"], r[1:]))
        summary[run]["train_seconds"] = metrics["train_seconds"]
        summary[run]["epochs"] = metrics["epochs"]
    print("| features | kNN top-1 | linear top-1 | macro F1 | NMI | ARI | cluster acc | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        secs = summary[r[0]].get("train_seconds")
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.2f} | "
              f"{'' if secs is None else f'{secs:.0f}'} |")
    print("\nPer-epoch kNN top-1 (test split) against training wall time:\n")
    print("| run | epoch | elapsed s | kNN top-1 |")
    print("|---|---|---|---|")
    for run in ("contrastive", "autoencoder"):
        log = root / run / "log.jsonl"
        if log.is_file():
            for line in log.read_text().splitlines():
                e = json.loads(line)
                if "knn_top1" in e:
                    print(f"| {run} | {e['epoch']} | {e['elapsed']:.1f} | {e['knn_top1']:.2f} |")
    cluster_table(root, summary)
    print(json.dumps({"bench": "mnist_protocol", "results": summary}))


def cluster_table(root: Path, summary: dict) -> None:
    """The clustering stage on top of the contrastive run: its head beside k-means on the same encoder."""
    probe_file = root / "contrastive-cluster-probe.json"
    if not probe_file.is_file():
        return
    enc = json.loads(probe_file.read_text())["results"]["encoder"]
    metrics = json.loads((root / "contrastive-cluster" / "metrics.json").read_text())
    pre = summary.get("contrastive", {}).get("train_seconds") or 0.0
    row = {"head_acc": enc["head"]["accuracy"], "head_nmi": enc["head"]["nmi"], "head_ari": enc["head"]["ari"],
           "kmeans_acc": enc["kmeans"]["accuracy"], "kmeans_nmi": enc["kmeans"]["nmi"],
           "knn_top1": enc["knn"]["weighted_top1"], "neighbor_accuracy": metrics["neighbor_accuracy"],
           "cluster_seconds": metrics["train_seconds"], "pipeline_seconds": pre + metrics["train_seconds"]}
    summary["contrastive + cluster"] = row
    print("\nClustering stage (`unsuprnn cluster`) on the contrastive run, scored on the same 2,000:\n")
    print("| run | head acc | head NMI | head ARI | k-means acc (same encoder) | k-means NMI | kNN top-1 "
          "| neighbour acc | cluster s | pretrain + cluster s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| contrastive + cluster | {row['head_acc']:.2f} | {row['head_nmi']:.3f} | {row['head_ari']:.3f} | "
          f"{row['kmeans_acc']:.2f} | {row['kmeans_nmi']:.3f} | {row['knn_top1']:.2f} | "
          f"{row['neighbor_accuracy']:.2f} | {row['cluster_seconds']:.0f} | {row['pipeline_seconds']:.0f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/protocol"))
