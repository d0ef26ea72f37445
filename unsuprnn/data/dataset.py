"""A dataset as a run sees it: its source loaded (`sources`), preprocessed once (`preprocess`), with its
splits; and the same for an encoder that needs images of one shape."""

from __future__ import annotations

import dataclasses

from ..config import DataConfig
from ..errors import UserError
from .images import Images
from .preprocess import preprocess
from .sources import load_source


AUTO_RESIZE = 96  # resize auto: images larger than this many pixels a side are resized to it


def load_dataset(cfg: DataConfig, seed: int) -> Images:
    """The dataset named by `cfg`, preprocessed, with its splits; `resize: auto` is resolved in `cfg`, in place
    (images larger than AUTO_RESIZE px a side to AUTO_RESIZE x AUTO_RESIZE, others kept)."""
    ds = load_source(cfg, seed)
    if cfg.resize == "auto":
        _, h, w = ds.shape
        cfg.resize = AUTO_RESIZE if max(h, w) > AUTO_RESIZE else None
        if cfg.resize:
            ds.changes["resize_auto"] = {"from": [h, w], "to": AUTO_RESIZE}
    ds.images = preprocess(ds.images, cfg)
    return ds


def load_dataset_matching(cfg: DataConfig, seed: int, shape, spec: str | None = None) -> Images:
    """`load_dataset` for an encoder trained on images of `shape` (C, H, W); `spec` replaces the
    dataset. A different image shape is a UserError that says how to fix it."""
    ds = load_dataset(dataclasses.replace(cfg, dataset=spec) if spec else cfg, seed)
    if tuple(ds.shape) != tuple(shape):
        c, h, w = shape
        raise UserError(f"{ds.spec} has images {'x'.join(map(str, ds.shape))} (CxHxW) but the encoder was "
                        f"trained on {c}x{h}x{w}; use matching data or --set data.resize/data.grayscale")
    return ds
