"""Training from an image set far larger than the training touches, memory-mapped from disk.

Generates (once) a uint8 .npy of N 28x28 images with labels beside it, then runs unsuprnn's own
`train()` on `npy:FILE` for a fixed number of steps while a thread samples this process's memory:
anonymous RSS (the process's own allocations) and file-backed RSS (mapped pages of the data file,
which the kernel can drop at any time). Prints a table and, last, one JSON line.

    python scripts/bench_stream.py --images 1000000 --steps 200
    python scripts/bench_stream.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GENERATE = """
import numpy as np, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 28, 28))
for s in range(0, n, 65536):
    m = min(65536, n - s)
    base = rng.integers(0, 64, (m, 28, 28), dtype=np.uint8)
    base[:, 8:20, 8:20] += rng.integers(0, 190, (m, 1, 1), dtype=np.uint8)  # a bright block of varying level
    mm[s:s + m] = base
mm.flush()
np.save(path[:-4] + ".labels.npy", rng.integers(0, 10, n))
"""


def memory() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM", "VmRSS"):
            out[key] = int(val.split()[0]) / 1024  # MiB
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--file", default=None, help="where to keep the generated .npy (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="100,000 images and 20 steps")
    args = p.parse_args()
    if args.quick:
        args.images, args.steps = 100_000, 20
    path = Path(args.file or Path(tempfile.gettempdir()) / f"unsuprnn-stream-{args.images}.npy")
    if not path.is_file():  # generated in a child process, so its pages never count here
        subprocess.run([sys.executable, "-c", GENERATE, str(args.images), str(path)], check=True)

    from unsuprnn.config import Config
    from unsuprnn.runs.files import read_log
    from unsuprnn.train import train

    cfg = Config()
    cfg.data.dataset = f"npy:{path}"
    cfg.encoder.hidden, cfg.encoder.layers = args.hidden, 1
    cfg.train.epochs, cfg.train.batch_size, cfg.train.max_steps_per_epoch = 1, args.batch_size, args.steps
    cfg.train.knn_every, cfg.train.device = 0, args.device
    before = memory()
    peak = dict(before)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for k, v in memory().items():
                peak[k] = max(peak.get(k, 0), v)
            time.sleep(0.1)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, Path(tmp) / "run", quiet=True)
        wall = time.perf_counter() - t0
        log = read_log(Path(tmp) / "run" / "log.jsonl")
    stop.set()
    t.join()
    res = {"bench": "stream", "images": args.images, "file_mib": round(path.stat().st_size / 2**20),
           "steps": args.steps, "batch_size": args.batch_size, "images_per_s": round(log[-1]["images_per_s"], 1),
           "wall_s": round(wall, 1), "rss_anon_before_mib": round(before["RssAnon"]),
           "rss_file_before_mib": round(before["RssFile"]),
           "peak_rss_anon_mib": round(peak["RssAnon"]), "peak_rss_file_mib": round(peak["RssFile"]),
           "peak_rss_mib": round(peak["VmHWM"]), "device": cfg.train.device}
    for k, v in res.items():
        print(f"{k:>22}: {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
