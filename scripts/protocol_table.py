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
    print(json.dumps({"bench": "mnist_protocol", "results": summary}))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/protocol"))
