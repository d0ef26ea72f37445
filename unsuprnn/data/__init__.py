"""Data layer: sources -> preprocessing -> device batches -> augmentation -> sequence views."""

from __future__ import annotations

from ..config import DataConfig
from .images import Images, stratified_split
from .preprocess import channel_stats, preprocess
from .sources import load_source


def load_dataset(cfg: DataConfig, seed: int) -> Images:
    """The dataset named by `cfg`, preprocessed, with its splits."""
    ds = load_source(cfg, seed)
    ds.images = preprocess(ds.images, cfg)
    return ds


__all__ = ["Images", "load_dataset", "stratified_split", "channel_stats", "preprocess", "load_source"]
