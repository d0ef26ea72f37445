"""Every label-free objective on one dataset under the same wall-time budget: kNN, linear and k-means
accuracy against the time each was given, beside raw pixels and a random encoder, in one table.

    python scripts/compare_objectives.py --dataset idx:../shared/data/mnist --budget 150 --device cpu \\
        --out runs/compare -- --hidden 128 --batch-size 128

For each objective the recipe `configs/mnist_rows_bilstm_OBJECTIVE.yaml` (a mix A+B: `..._A_B.yaml`; or
`--config-pattern`) is
timed on a few steps, given as many epochs as fit in `--budget` seconds (so that its learning-rate
and momentum schedules run to their end), trained, and probed on the dev protocol's split. Arguments
after `--` go to every `unsuprnn pretrain`. Writes OUT/compare.json and OUT/compare.png (kNN top-1
against training time, one line per objective); prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

OBJECTIVES = ("contrastive", "autoencoder", "byol", "simsiam", "vicreg", "barlowtwins", "moco", "nnclr", "dcl",
              "cpc", "apc", "masked", "contrastive+cpc", "contrastive+masked")
CALIBRATION_STEPS = 8

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unsuprnn.runs.files import read_log, saved_config  # noqa: E402


def unsuprnn(*args: str) -> None:
    cmd = [sys.executable, "-m", "unsuprnn.cli", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")


def seconds_per_step(config: str, dataset: str, out: Path, extra: list[str]) -> tuple[float, int]:
    """(seconds per training step, steps per epoch) of the recipe, from a short run (second epoch: warm)."""
    unsuprnn("pretrain", "--config", config, "--dataset", dataset, "--out", str(out), "--force", "--quiet", *extra,
             "--epochs", "2", "--set", f"train.max_steps_per_epoch={CALIBRATION_STEPS}", "--set", "train.knn_every=0")
    cfg = saved_config(out)
    train_size = json.loads((out / "meta.json").read_text())["split"]["sizes"]["train"]
    return read_log(out / "log.jsonl")[-1]["seconds"] / CALIBRATION_STEPS, max(1, train_size // cfg.train.batch_size)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="idx:../shared/data/mnist")
    ap.add_argument("--budget", type=float, default=150.0, help="training seconds per objective")
    ap.add_argument("--objectives", default=",".join(o for o in OBJECTIVES if o != "autoencoder"))
    ap.add_argument("--config-pattern", default="configs/mnist_rows_bilstm_{}.yaml")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="runs/compare")
    args = ap.parse_args(argv)
    out = Path(args.out)
    extra = extra + ["--device", args.device, "--set", "train.knn_every=1"]  # a kNN point every epoch
    rows, t0 = [], time.perf_counter()
    for i, name in enumerate(args.objectives.split(",")):
        config = args.config_pattern.format(name.replace("+", "_"))  # a mix's recipe: A_B
        per_step, steps = seconds_per_step(config, args.dataset, out / f"{name}-calibration", extra)
        epochs = max(1, int(args.budget / (per_step * steps)))
        run = out / name
        unsuprnn("pretrain", "--config", config, "--dataset", args.dataset, "--out", str(run), "--force", "--quiet",
                 "--epochs", str(epochs), *extra)
        baselines = ["--baselines", "raw,random"] if i == 0 else []
        unsuprnn("probe", "--run", str(run), "--device", args.device, "--quiet", *baselines)
        probe = json.loads((run / "probe.json").read_text())
        metrics = json.loads((run / "metrics.json").read_text())
        for feature, res in probe["results"].items():
            if feature != "encoder" and i > 0:
                continue
            rows.append({"objective": name if feature == "encoder" else feature, "epochs": epochs if feature == "encoder" else None,
                         "train_seconds": metrics["train_seconds"] if feature == "encoder" else None,
                         "knn": res["knn"]["weighted_top1"], "linear": res["linear"]["accuracy"],
                         "kmeans": res["kmeans"]["accuracy"], "kmeans_std": res["kmeans"]["spread"]["accuracy"]["std"],
                         "nmi": res["kmeans"]["nmi"],
                         "collapsed": metrics.get("collapsed") if feature == "encoder" else None,
                         "embedding_std": metrics.get("embedding_std") if feature == "encoder" else None,
                         "log": str(run / "log.jsonl") if feature == "encoder" else None})
        print(f"{name}: {epochs} epochs, {metrics['train_seconds']:.0f} s, kNN {rows[-1 if i else 0]['knn']:.2f}",
              file=sys.stderr)
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, out / "compare.png")
    print("| features | epochs | train s | kNN top-1 | linear top-1 | k-means acc (± std over restarts) | NMI | collapsed |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        epochs = "-" if r["epochs"] is None else r["epochs"]
        secs = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        col = "-" if r["collapsed"] is None else ("yes" if r["collapsed"] else "no")
        print(f"| {r['objective']} | {epochs} | {secs} | {r['knn']:.2f} | {r['linear']:.2f} | "
              f"{r['kmeans']:.2f} ±{r['kmeans_std']:.2f} | {r['nmi']:.3f} | {col} |")
    print(json.dumps({"dataset": args.dataset, "budget_s": args.budget, "extra": extra,
                      "wall_s": time.perf_counter() - t0, "rows": [{k: v for k, v in r.items() if k != "log"}
                                                                   for r in rows]}))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in rows:
        if r["log"] is None:
            ax.axhline(r["knn"], ls="--", lw=0.8, color="grey")
            ax.text(0, r["knn"], f" {r['objective']}", va="bottom", fontsize=8, color="grey")
            continue
        log = [json.loads(x) for x in Path(r["log"]).read_text().splitlines()]
        pts = [(e["elapsed"], e["knn_top1"]) for e in log if "knn_top1" in e]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=r["objective"])
    ax.set(xlabel="training time (s)", ylabel="kNN top-1 on the monitor split (%)",
           title="label-free objectives at equal training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
