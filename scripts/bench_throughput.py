"""Training throughput, side by side in one run (images/s, higher is better):

  ceiling       the contrastive training step alone, on random sequences already on the device
  tool          unsuprnn's own path: `train()` with device-resident uint8 data and batched augmentation
  conventional  per-sample PIL/torchvision transforms in a DataLoader with workers, feeding the same step

Prints a table and, last, one JSON line. Example:
    python scripts/bench_throughput.py --dataset idx:../shared/data/mnist --device cuda
    python scripts/bench_throughput.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unsuprnn.config import Config  # noqa: E402
from unsuprnn.data.dataset import load_dataset  # noqa: E402
from unsuprnn.data.invariance import resolve_from_data  # noqa: E402
from unsuprnn.data.preprocess import channel_stats  # noqa: E402
from unsuprnn.data.pipeline import build_pipeline  # noqa: E402
from unsuprnn.devices import resolve_device  # noqa: E402
from unsuprnn.models.encoders import build_encoder  # noqa: E402
from unsuprnn.objectives import build_objective  # noqa: E402
from unsuprnn.runs.files import read_log, versions  # noqa: E402
from unsuprnn.train import train  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_config(args) -> Config:
    cfg = Config()
    cfg.data.dataset, cfg.data.view, cfg.data.patch = args.dataset, args.view, args.patch
    cfg.encoder.cell, cfg.encoder.hidden, cfg.encoder.layers = args.cell, args.hidden, args.layers
    cfg.train.batch_size, cfg.train.device, cfg.train.precision = args.batch_size, args.device, args.precision
    cfg.train.knn_every, cfg.train.seed = 0, 0
    return cfg


def build(cfg: Config, shape, mean, std, device):
    torch.manual_seed(0)
    pipe = build_pipeline(cfg.data, cfg.augment, shape, mean, std)
    enc = build_encoder(cfg.encoder, pipe.seq_shape[1], pipe.grid)
    obj = build_objective("contrastive", enc, pipe, cfg.objective, 10).to(device)
    return obj, torch.optim.AdamW(obj.parameters(), lr=1e-3)


def step(obj, opt, views: torch.Tensor, autocast_dtype):
    """One contrastive step on sequences [2B, T, D] (first half view 1, second half view 2)."""
    b = views.shape[0] // 2
    with torch.autocast(views.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        z = obj.head(obj.encoder(views))
        loss = obj.criterion(z[:b].float(), z[b:].float())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(obj.parameters(), 1.0)
    opt.step()


def bench_ceiling(cfg, shape, mean, std, device, steps, autocast_dtype) -> float:
    obj, opt = build(cfg, shape, mean, std, device)
    t, d = obj.pipeline.seq_shape
    views = torch.randn(2 * cfg.train.batch_size, t, d, device=device)
    for _ in range(3):
        step(obj, opt, views, autocast_dtype)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(obj, opt, views, autocast_dtype)
    sync(device)
    return steps * cfg.train.batch_size / (time.perf_counter() - t0)


def bench_tool(cfg, epochs) -> tuple[float, float | None]:
    """images/s of the last epoch of a real `train()` run (the first epoch includes warm-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg.train.epochs = epochs
        if cfg.train.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        train(cfg, Path(tmp) / "run", quiet=True)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cfg.train.device.startswith("cuda") else None
        return read_log(Path(tmp) / "run" / "log.jsonl")[-1]["images_per_s"], peak


class TwoViews(torch.utils.data.Dataset):
    """Per-sample PIL/torchvision augmentation, the conventional way (as lightly's transforms do)."""

    def __init__(self, images: torch.Tensor, cfg: Config, mean, std):
        import torchvision.transforms as T
        self.images = images
        a = cfg.augment
        size = images.shape[-1]
        self.t = T.Compose([
            T.RandomResizedCrop(size, scale=(a.crop_scale, 1.0), ratio=(0.9, 1.1)),
            T.RandomAffine(a.rotate, translate=(a.translate, a.translate), shear=a.shear),
            T.ColorJitter(brightness=a.brightness, contrast=a.contrast),
            T.ToTensor(),
            T.Lambda(lambda x: (x + a.noise * torch.rand(()) * torch.randn_like(x)).clamp(0, 1)),
            T.Normalize(mean, std),
            T.RandomErasing(p=a.erase_prob, scale=(0.02, a.erase_max ** 2), value=0),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image
        img = self.images[i]
        pil = Image.fromarray(img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy())
        return self.t(pil), self.t(pil)


def bench_conventional(cfg, images, shape, mean, std, device, steps, workers, autocast_dtype) -> float:
    obj, opt = build(cfg, shape, mean, std, device)
    loader = torch.utils.data.DataLoader(TwoViews(images, cfg, mean, std), batch_size=cfg.train.batch_size,
                                         shuffle=True, num_workers=workers, drop_last=True,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    view = obj.pipeline.view
    done, t0 = 0, None
    while done < steps + 2:
        for v1, v2 in loader:
            if done == 2:  # the first batches include worker start-up
                sync(device)
                t0 = time.perf_counter()
            views = view.to_sequence(torch.cat([v1, v2]).to(device, non_blocking=True))
            step(obj, opt, views, autocast_dtype)
            done += 1
            if done >= steps + 2:
                break
    sync(device)
    return steps * cfg.train.batch_size / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="idx:../shared/data/mnist")
    p.add_argument("--view", default="rows")
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--precision", default="32", help="32 | bf16-mixed")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--epochs", type=int, default=3, help="train() epochs for the tool path")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="small model and data: under a minute on a CPU")
    args = p.parse_args()
    if args.quick:
        args.hidden, args.layers, args.batch_size, args.steps, args.epochs = 64, 1, 128, 8, 2
        if not args.dataset.startswith(("idx:", "npz:", "folder:")) or not Path(args.dataset[4:]).exists():
            args.dataset = "digits"
    device = resolve_device(args.device)
    args.device = str(device)
    cfg = make_config(args)
    ds = load_dataset(cfg.data, 0)
    images = ds.split("train")[0]
    if args.quick:
        images = images[:1024]
        cfg.data.dataset = f"npz:{_npz(images)}"
    mean, std = channel_stats(images)
    resolve_from_data(cfg.data, cfg.augment, images)  # (hflip and intensity auto, as pretraining resolves them)
    autocast = torch.bfloat16 if args.precision.startswith("bf16") else None
    ceiling = bench_ceiling(cfg, ds.shape, mean, std, device, args.steps, autocast)
    tool, peak = bench_tool(cfg, args.epochs)
    conventional = bench_conventional(cfg, images, ds.shape, mean, std, device, args.steps, args.workers, autocast)
    res = {"bench": "throughput", "device": str(device),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "dataset": args.dataset, "view": args.view, "cell": args.cell, "hidden": args.hidden,
           "layers": args.layers, "batch_size": args.batch_size, "precision": args.precision,
           "ceiling_img_s": round(ceiling, 1), "tool_img_s": round(tool, 1),
           "conventional_img_s": round(conventional, 1), "tool_over_ceiling": round(tool / ceiling, 3),
           "tool_over_conventional": round(tool / conventional, 2), "peak_gpu_mib": peak and round(peak),
           "workers": args.workers, "torch": versions()["torch"]}
    for k in ("ceiling_img_s", "tool_img_s", "conventional_img_s", "tool_over_ceiling", "tool_over_conventional"):
        print(f"{k:>24}: {res[k]}")
    print(json.dumps(res))


def _npz(images: torch.Tensor) -> str:
    import numpy as np
    f = Path(tempfile.mkdtemp()) / "bench.npz"
    np.savez(f, images=images.numpy(), labels=np.zeros(len(images), dtype=np.int64))
    return str(f)


if __name__ == "__main__":
    main()
