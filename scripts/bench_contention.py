"""Throughput on a shared machine: each job alone, beside a CPU-bound process on one core, and beside a copy of
itself, with torch's own thread settings and with the ones unsuprnn chooses (unsuprnn/threads.py), side by
side in one run. Ratios: each job's rate beside another over its rate alone.

Jobs (each in a fresh process, so that thread settings take effect before torch loads):
  train  one training step after another of the default encoder (BiLSTM 2x128 over 28 rows of 28, contrastive,
         batch 128 x 2 views), views/s;
  umap   the probe's UMAP layout (10 dimensions, 10 neighbours, cosine) of 2,000 x 128 features, layouts/min.

    python scripts/bench_contention.py            # about 6 minutes on 2 cores
    python scripts/bench_contention.py --seconds 10 --jobs train
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"

JOB = r'''
import json, os, sys, time
sys.path.insert(0, {root!r})
if {chosen}:
    from unsuprnn.threads import choose
    choose(None)
import torch
job, seconds = {job!r}, {seconds}
if job == "train":
    from unsuprnn.config import Config
    from unsuprnn.data.pipeline import build_pipeline
    from unsuprnn.models.encoders import build_encoder
    from unsuprnn.objectives import build_objective
    cfg = Config()
    torch.manual_seed(0)
    pipe = build_pipeline(cfg.data, cfg.augment, (1, 28, 28), [0.13], [0.3])
    obj = build_objective("contrastive", build_encoder(cfg.encoder, 28), pipe, cfg.objective, 10)
    opt = torch.optim.AdamW(obj.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (128, 1, 28, 28), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    def work():
        loss, _ = obj(x, None, gen)
        opt.zero_grad(); loss.backward(); opt.step()
        return 256
else:
    import numpy as np
    from unsuprnn.evaluate.reduce import umap_features
    feats = np.random.default_rng(0).standard_normal((2000, 128)).astype("float32")
    calls = [0]
    def work():
        calls[0] += 1
        umap_features(feats + 1e-6 * calls[0], seed=0)  # (a new input each time: layouts are kept by content)
        return 60
work()  # warm-up: compile, allocate
t0, done = time.perf_counter(), 0
while time.perf_counter() - t0 < seconds:
    done += work()
print(json.dumps({{"rate": done / (time.perf_counter() - t0), "threads": torch.get_num_threads(),
                  "wait": os.environ.get("OMP_WAIT_POLICY")}}))
'''


def job_process(job: str, chosen: bool, seconds: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS",
                                                             "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}
    code = JOB.format(root=str(ROOT), chosen=chosen, job=job, seconds=seconds)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


def measure(job: str, chosen: bool, beside: str, seconds: float) -> float:
    """The job's rate alone, beside a spinning process pinned to one core, or beside a copy of itself."""
    other = None
    if beside == "spin":
        other = subprocess.Popen([sys.executable, "-c", SPIN.format(s=seconds + 60)],
                                 preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    elif beside == "itself":
        other = job_process(job, chosen, seconds + 30)
        time.sleep(3)
    try:
        out = job_process(job, chosen, seconds).communicate()[0]
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return json.loads(out.strip().splitlines()[-1])["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=25)
    ap.add_argument("--jobs", default="train,umap")
    args = ap.parse_args()
    rows = []
    for job in args.jobs.split(","):
        unit = "views/s" if job == "train" else "layouts/min"
        for chosen in (False, True):
            rates = {b: measure(job, chosen, b, args.seconds) for b in ("alone", "spin", "itself")}
            rows.append({"job": job, "threads": "unsuprnn" if chosen else "torch defaults", "unit": unit,
                         **{b: round(r, 1) for b, r in rates.items()},
                         "spin/alone": round(rates["spin"] / rates["alone"], 3),
                         "itself/alone": round(rates["itself"] / rates["alone"], 3)})
            print(f"{job:5s} {rows[-1]['threads']:15s} alone {rates['alone']:8.1f}  beside a spinning core "
                  f"{rates['spin']:8.1f} ({rows[-1]['spin/alone']:.2f})  beside itself {rates['itself']:8.1f} "
                  f"({rows[-1]['itself/alone']:.2f}) {unit}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
