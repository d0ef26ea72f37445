"""What `unsuprnn data` prints of a dataset (split sizes, image shape, classes, the sequence shape of a
view) and, with a grid file, the PNG of samples beside augmented views."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..config import Config
from .dataset import load_dataset
from .notes import data_notes
from .views import resolve_view
from ..models.encoders import resolve_input_proj
from ..names.encoders import specs as encoder_specs
from .augment import BatchAugment
from .views import make_view


def describe_dataset(cfg: Config, split: str = "train", grid: Path | None = None) -> Iterator[str]:
    """Lines describing `cfg.data` (split `split`); writes `grid` (a PNG) last when given."""
    ds = load_dataset(cfg.data, cfg.train.seed)
    images, labels = ds.split(split)
    c, h, w = ds.shape
    chose = [resolve_view(cfg.data, ds.shape, encoder_specs()[cfg.encoder.kind].views),
             resolve_input_proj(cfg.encoder, cfg.data.view)]
    t, d = make_view(cfg.data.view, ds.shape, cfg.data.patch).seq_shape()
    info = ds.split_info
    how = ("own split" if info["source"] == "own"
           else f"stratified split, test fraction {info['test_fraction']}, seed {info['seed']}")
    yield f"dataset: {ds.spec} ({how})"
    yield "splits: " + ", ".join(f"{k} {n}" for k, n in info["sizes"].items())
    yield f"image shape: {c} x {h} x {w} (C x H x W), uint8"
    if ds.has_labels:
        counts = labels[labels >= 0].bincount(minlength=len(ds.classes)).tolist()
        unl = int((labels < 0).sum())
        yield (f"classes ({len(ds.classes)}) in {split} [{len(images)} images]: "
               + ", ".join(f"{name}: {n}" for name, n in zip(ds.classes, counts))
               + (f", unlabeled: {unl}" if unl else ""))
    else:
        yield f"classes: none (unlabeled) in {split} [{len(images)} images]"
    view = f"{cfg.data.view}" + (f" {cfg.data.patch}x{cfg.data.patch}" if cfg.data.view == "patches" else "")
    proj = f", each step embedded to {cfg.encoder.input_proj}" if cfg.encoder.input_proj else ""
    yield f"view: {view} -> sequence T x D = {t} x {d}{proj}" + (f" ({'; '.join(x for x in chose if x)})"
                                                                   if any(chose) else "")
    from .invariance import invariances, resolve_from_data
    measured = invariances(ds.images, cfg.train.seed, ds.splits["train"])
    resolved = resolve_from_data(cfg.data, cfg.augment, ds.images, cfg.train.seed, ds.splits["train"],
                                 measured={k: v["ratio"] for k, v in measured.items()})  # (as pretraining will)
    est = training_estimate(cfg, ds.images[ds.splits["train"][:64]], len(ds.splits["train"]))
    yield (f"training estimate on this CPU ({est['threads']} threads): about {est['images_per_s']:.0f} images/s "
           f"(two augmented views each), about {est['bytes'] / 2**30:.2f} GiB for the images, the weights and a "
           f"batch of {est['batch']}")
    for note in data_notes(ds):
        yield f"note: {note}"
    yield ("closed under (label-free: a transformed image's nearest image of the set, against an image's own; "
           "closed from 0.95): " + ", ".join(f"{k} {v['ratio']:.2f}" + (" (closed)" if v["closed"] else "")
                                              for k, v in measured.items()))
    yield from resolved.values()
    if grid is not None:
        from .grid import save_augmentation_grid
        save_augmentation_grid(images, BatchAugment(cfg.augment), grid, seed=cfg.train.seed)
        yield f"wrote {grid}"


def training_estimate(cfg: Config, images, n_train: int, steps: int = 2) -> dict:
    """What training `cfg` (its view resolved) on `images` (uint8 [N, C, H, W]) would take on this machine's CPU:
    images/s, timed on `steps` steps of augmentation and the encoder's forward and backward pass over two views
    of a few images (the heads cost little beside them), and the memory of the images, the weights and one
    batch's activations. For `unsuprnn data`: which view a set of large images can afford."""
    import time

    import torch

    from ..models.encoders import activation_floats, build_encoder
    from ..plan import AUTO, auto_batch_size
    from .pipeline import build_pipeline
    batch = auto_batch_size(n_train) if cfg.train.batch_size == AUTO else cfg.train.batch_size
    c = images.shape[1]
    pipeline = build_pipeline(cfg.data, cfg.augment, tuple(images.shape[1:]), [0.5] * c, [0.25] * c)
    encoder = build_encoder(cfg.encoder, pipeline.seq_shape[1], pipeline.grid)
    x = images[:min(32, len(images))]
    generator = torch.Generator().manual_seed(0)
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        views = torch.cat([pipeline.augmented(x, generator), pipeline.augmented(x, generator)])
        encoder(views).square().mean().backward()
    seconds = (time.perf_counter() - t0) / steps
    params = sum(p.numel() for p in encoder.parameters())
    nbytes = images.numel() + 16 * params + 4 * 2 * batch * activation_floats(cfg.encoder, pipeline.seq_shape)
    return {"images_per_s": len(x) / seconds, "bytes": nbytes, "batch": batch, "threads": torch.get_num_threads()}
