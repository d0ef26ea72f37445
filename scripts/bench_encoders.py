"""Encoders side by side in one run: the row BiLSTM against Sequencer2D at the same embedding width, images a
second for a contrastive training step (two augmented views, backward, AdamW) and for embedding (eval, no
gradient), on each device asked for. Real images (MNIST-sized by default), resident on the device as uint8.

    python scripts/bench_encoders.py --dataset idx:../shared/data/mnist --devices cpu
    python scripts/bench_encoders.py --dataset idx:../shared/data/mnist --devices cpu,cuda

Each encoder is named as `--set`-style settings (`--encoders`); the default compares, at an embedding of 512:
  rows      the default row encoder: bidirectional LSTM, 2 layers x 128, mean+max pool   (T = 28 rows)
  s2d-p4    Sequencer2D, 2 blocks, BiLSTM 64 per direction (width 256), 4 px patches   (7 x 7 grid)
  s2d-p2    Sequencer2D, 2 blocks, as above on 2 px patches                            (14 x 14 grid)
  s2d-p7    Sequencer2D, 2 blocks, as above on 7 px patches                            (4 x 4 grid)
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unsuprnn.config import Config, apply_overrides  # noqa: E402
from unsuprnn.data.dataset import load_dataset  # noqa: E402
from unsuprnn.data.invariance import resolve_from_data  # noqa: E402
from unsuprnn.data.pipeline import build_pipeline  # noqa: E402
from unsuprnn.data.preprocess import channel_stats  # noqa: E402
from unsuprnn.devices import resolve_device  # noqa: E402
from unsuprnn.models.encoders import build_encoder  # noqa: E402
from unsuprnn.objectives import build_objective  # noqa: E402
from unsuprnn.runs.files import versions  # noqa: E402

ENCODERS = {
    "rows": [],
    "s2d-p4": ["encoder.kind=sequencer2d", "data.view=patches", "data.patch=4", "encoder.hidden=64"],
    "s2d-p2": ["encoder.kind=sequencer2d", "data.view=patches", "data.patch=2", "encoder.hidden=64"],
    "s2d-p7": ["encoder.kind=sequencer2d", "data.view=patches", "data.patch=7", "encoder.hidden=64"],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, steps: int, warmup: int = 2) -> float:
    """Seconds per call of fn, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def measure(name: str, settings: list[str], images: torch.Tensor, stats, device: torch.device, args) -> dict:
    cfg = apply_overrides(Config(), settings)
    resolve_from_data(cfg.data, cfg.augment, images.cpu())  # (hflip and intensity auto, as pretraining resolves them)
    torch.manual_seed(0)
    pipeline = build_pipeline(cfg.data, cfg.augment, tuple(images.shape[1:]), *stats).to(device)
    encoder = build_encoder(cfg.encoder, pipeline.seq_shape[1], pipeline.grid)
    objective = build_objective("contrastive", encoder, pipeline, cfg.objective, 10).to(device)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    batch = images[: args.batch_size]
    y = torch.zeros(len(batch), dtype=torch.long, device=device)

    def train_step():
        loss, _ = objective(batch, y, gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def embed():
        with torch.no_grad():
            encoder.eval()(pipeline.clean(images[: args.embed_batch]))

    objective.train()
    train_s = timed(train_step, device, args.steps)
    embed_s = timed(embed, device, args.steps)
    t, d = pipeline.seq_shape
    return {"encoder": name, "device": str(device), "settings": settings, "embedding_dim": encoder.out_dim,
            "sequence": f"{t} x {d}" + (f" ({pipeline.grid[0]} x {pipeline.grid[1]} grid)" if pipeline.grid else ""),
            "parameters": sum(p.numel() for p in encoder.parameters()),
            "train_images_per_s": args.batch_size / train_s, "embed_images_per_s": args.embed_batch / embed_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--devices", default="cpu", help="comma list: cpu, cuda, auto")
    ap.add_argument("--encoders", default=",".join(ENCODERS), help="comma list of: " + ", ".join(ENCODERS))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--embed-batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cfg = Config()
    cfg.data.dataset = args.dataset
    ds = load_dataset(cfg.data, 0)
    train_idx = ds.splits["train"]
    stats = channel_stats(ds.images, train_idx, 0)
    rows = []
    for dev in args.devices.split(","):
        device = resolve_device(dev)
        images = ds.images[train_idx[: max(args.batch_size, args.embed_batch)]].to(device)
        for name in args.encoders.split(","):
            rows.append(measure(name, ENCODERS[name], images, stats, device, args))
    base = {r["device"]: r for r in rows if r["encoder"] == rows[0]["encoder"]}
    print(f"{'encoder':8} {'device':6} {'E':>4} {'params':>9} {'sequence':>22} {'train img/s':>12} {'embed img/s':>12} "
          f"{'train vs ' + rows[0]['encoder']:>14}")
    for r in rows:
        ratio = r["train_images_per_s"] / base[r["device"]]["train_images_per_s"]
        print(f"{r['encoder']:8} {r['device']:6} {r['embedding_dim']:>4} {r['parameters']:>9,} {r['sequence']:>22} "
              f"{r['train_images_per_s']:>12.1f} {r['embed_images_per_s']:>12.1f} {ratio:>14.2f}")
    print(json.dumps({"dataset": args.dataset, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                      "versions": versions(), "rows": rows}))


if __name__ == "__main__":
    main()
