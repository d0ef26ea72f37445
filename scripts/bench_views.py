"""Which view reads photographs of each size well for the CPU time it costs: the photograph protocol (ten
scikit-image photographs, 120 crops each, one class per photograph; ../shared/data/make_photo_crops.py) at
several sizes, each view trained for the same --budget, then the probe's kNN (and raw pixels' beside it).

    python ../shared/data/make_photo_crops.py --out data/photos96 --size 96 --per-class 120 --seed 0   # each size
    python scripts/bench_views.py --folders data/photos32 data/photos64 data/photos96 data/photos224 --budget 90s

Views (--variants): rows (one step per row); patches8 (an 8 x 8 grid of patches, each embedded to 128 by a
learned linear map, --input-proj 128); and any `name=FLAGS` given, e.g. 'r48=--resize 48'. Prints one table
row per folder and view: training images/s (median over epochs), steps trained, peak memory of the pretrain
process, kNN top-1 of the encoder and of raw pixels, and kNN per CPU minute of training; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = {"rows": "--view rows --input-proj 0", "patches8": "--view patches --patch {grid8} --input-proj 128"}


def side(folder: str) -> int:
    from PIL import Image
    first = next(p for p in sorted(Path(folder).rglob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return Image.open(first).size[0]


def unsuprnn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unsuprnn.cli", *args], capture_output=True, text=True)


def run(folder: str, name: str, flags: str, budget: str, out: Path, extra: list[str]) -> dict:
    s = side(folder)
    flags = flags.format(grid8=max(1, s // 8))
    run_dir = out / f"{Path(folder).name}-{name}"
    cmd = ["/usr/bin/time", "-f", "maxrss %M", sys.executable, "-m", "unsuprnn.cli", "pretrain", "--dataset",
           f"folder:{folder}", "--budget", budget, "--out", str(run_dir), "--force", "--quiet", *shlex.split(flags),
           *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        return {"folder": folder, "view": name, "error": done.stderr.strip().splitlines()[-1]}
    rss = int(re.search(r"maxrss (\d+)", done.stderr).group(1)) / 1024
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    probe = unsuprnn("probe", "--run", str(run_dir), "--method", "knn", "--baselines", "raw", "--quiet",
                     "--json", str(run_dir / "knn.json"), "--force")
    if probe.returncode:
        return {"folder": folder, "view": name, "error": probe.stderr.strip().splitlines()[-1]}
    res = json.loads((run_dir / "knn.json").read_text())["results"]
    minutes = log[-1]["elapsed"] / 60
    meta = json.loads((run_dir / "meta.json").read_text())
    return {"folder": folder, "side": s, "view": name, "flags": flags, "sequence": meta["sequence_shape"],
            "img_per_s": statistics.median(e["images_per_s"] for e in log), "steps": log[-1]["step"],
            "train_minutes": round(minutes, 2), "peak_mb": round(rss), "knn": res["encoder"]["knn"]["weighted_top1"],
            "raw_knn": res["raw"]["knn"]["weighted_top1"],
            "knn_per_cpu_minute": round(res["encoder"]["knn"]["weighted_top1"] / max(minutes, 1e-9), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folders", nargs="+", required=True)
    ap.add_argument("--budget", default="90s")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help="rows, patches8, or name=FLAGS")
    ap.add_argument("--out", default="runs/bench_views")
    ap.add_argument("--set", dest="extra", nargs="*", default=[], help="more pretrain flags for every run")
    args = ap.parse_args()
    rows = []
    for folder in args.folders:
        unsuprnn("data", "--dataset", f"folder:{folder}")  # decode once (cached), outside the budgets
        for variant in args.variants:
            name, _, flags = variant.partition("=")
            rows.append(run(folder, name, flags or VARIANTS[name], args.budget, Path(args.out), args.extra))
            r = rows[-1]
            if "error" in r:
                print(f"{Path(folder).name:10s} {name:9s} error: {r['error']}", flush=True)
                continue
            print(f"{Path(folder).name:10s} {name:9s} T x D {r['sequence'][0]:>3} x {r['sequence'][1]:<5} "
                  f"{r['img_per_s']:7.0f} img/s  {r['steps']:5d} steps  {r['peak_mb']:6.0f} MB  kNN {r['knn']:5.1f} "
                  f"(raw {r['raw_knn']:5.1f})  {r['knn_per_cpu_minute']:6.1f} kNN/CPU-min", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
