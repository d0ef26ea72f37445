"""`folder:DIR` source: images in class subfolders (or flat), optional train/ and test/ splits.

Decoded once, with DataLoader workers for large folders, straight into a memory-mapped uint8 cache
keyed by the files and the decoding options; later loads map the cache and decode nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class _Decoder(torch.utils.data.Dataset):
    """Decode one image file to uint8 [C, H, W]; errors come back as text (raised by the caller)."""

    def __init__(self, paths: list[Path], mode: str, resize: Optional[int]):
        self.paths, self.mode, self.resize = paths, mode, resize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image
        p = self.paths[i]
        try:
            with Image.open(p) as im:
                im.load()
                im = im.convert(self.mode)
                if self.resize:
                    im = im.resize((self.resize, self.resize), Image.BILINEAR)
        except Exception as exc:  # PIL raises many types for damaged files
            return None, f"cannot decode image {p} ({exc}); remove or replace the file"
        a = np.asarray(im, dtype=np.uint8)
        return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), str(p)


def _first_mode(path: Path, cfg: DataConfig) -> str:
    from PIL import Image
    try:
        with Image.open(path) as im:
            return "L" if (cfg.grayscale or im.mode in ("1", "L", "I", "I;16", "F")) else "RGB"
    except Exception as exc:
        raise UserError(f"cannot decode image {path} ({exc}); remove or replace the file") from None


def _decode(paths: list[Path], cfg: DataConfig, dest) -> None:
    """Decode every image into `dest` (a uint8 [N, C, H, W] array, e.g. a memory map), in batches,
    with DataLoader workers for large folders."""
    from tqdm import tqdm

    mode = _first_mode(paths[0], cfg)
    workers = min(4, os.cpu_count() or 1) if len(paths) >= 2000 else 0
    loader = torch.utils.data.DataLoader(_Decoder(paths, mode, cfg.resize), batch_size=256, num_workers=workers,
                                         collate_fn=list)
    size, row = None, 0
    with tqdm(total=len(paths), desc="decoding images", unit="img", disable=len(paths) < 2000) as bar:
        for batch in loader:
            for arr, info in batch:
                if arr is None:
                    raise UserError(info)
                if size is None:
                    size = arr.shape
                elif arr.shape != size:
                    raise UserError(f"{info} is {arr.shape[2]}x{arr.shape[1]} but earlier images are "
                                    f"{size[2]}x{size[1]}; pass --resize N to bring them to one size")
                dest[row] = arr
                row += 1
            bar.update(len(batch))


def _probe_shape(path: Path, cfg: DataConfig) -> tuple[int, int, int]:
    arr, info = _Decoder([path], _first_mode(path, cfg), cfg.resize)[0]
    if arr is None:
        raise UserError(info)
    return arr.shape


def _cache_file(root: Path, paths: list[Path], cfg: DataConfig) -> Path:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(f"gray={cfg.grayscale}|resize={cfg.resize}".encode())
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else root / ".unsuprnn_cache"
    return cache_dir / f"decoded-{h.hexdigest()[:16]}.npy"


def load_folder_source(arg: str, cfg: DataConfig):
    """-> (images uint8 [N, C, H, W] memory map, labels, class names, splits or None, file paths)."""
    from ..atomic import atomic_path
    from .sources import open_memmap

    root = Path(arg)
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}; pass folder:DIR")
    split_dirs = [d for d in ("train", "test") if (root / d).is_dir()]
    groups = [(d, root / d) for d in split_dirs] or [(None, root)]
    all_paths, all_labels, split_of = [], [], []
    class_names = sorted({c.name for _, g in groups for c in g.iterdir()
                          if c.is_dir() and not c.name.startswith(".") and _list_images(c)})
    for split_name, g in groups:
        for p in _list_images(g):
            if any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            rel = p.relative_to(g).parts
            all_paths.append(p)
            all_labels.append(class_names.index(rel[0]) if len(rel) > 1 and rel[0] in class_names else -1)
            split_of.append(split_name)
    if not all_paths:
        raise UserError(f"no images (.png/.jpg/.jpeg/.bmp) under {root}; put images in class subfolders or flat")
    cache = _cache_file(root, all_paths, cfg)
    images = None
    if cache.is_file():
        try:
            images = open_memmap(cache)
        except Exception:
            images = None  # a damaged cache is rebuilt
    if images is None or len(images) != len(all_paths):
        shape = (len(all_paths),) + _probe_shape(all_paths[0], cfg)
        try:  # decode straight into a memory-mapped cache: bounded memory, decoded once
            with atomic_path(cache, suffix=".npy") as tmp:
                mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                _decode(all_paths, cfg, mm)
                mm.flush()
                del mm
            images = open_memmap(cache)
        except OSError:  # a read-only data folder: decode into memory instead
            images = np.empty(shape, dtype=np.uint8)
            _decode(all_paths, cfg, images)
    splits = None
    if split_dirs:
        names = np.array([s or "" for s in split_of])
        splits = {s: torch.from_numpy(np.flatnonzero(names == s)).long() for s in split_dirs}
    return (torch.from_numpy(images), torch.tensor(all_labels, dtype=torch.long), class_names, splits,
            [str(p) for p in all_paths])
