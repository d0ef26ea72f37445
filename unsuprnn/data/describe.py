"""What `unsuprnn data` prints of a dataset (split sizes, image shape, classes, the sequence shape of a
view) and, with a grid file, the PNG of samples beside augmented views."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..config import Config
from .dataset import load_dataset
from .augment import BatchAugment
from .views import make_view


def describe_dataset(cfg: Config, split: str = "train", grid: Path | None = None) -> Iterator[str]:
    """Lines describing `cfg.data` (split `split`); writes `grid` (a PNG) last when given."""
    ds = load_dataset(cfg.data, cfg.train.seed)
    images, labels = ds.split(split)
    c, h, w = ds.shape
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
    yield f"view: {cfg.data.view} -> sequence T x D = {t} x {d}"
    if grid is not None:
        from .grid import save_augmentation_grid
        save_augmentation_grid(images, BatchAugment(cfg.augment), grid, seed=cfg.train.seed)
        yield f"wrote {grid}"
