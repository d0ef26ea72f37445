"""`folder:DIR` source: images in class subfolders (or flat), optional train/ and test/ splits.

Decoded once, with DataLoader workers for large folders, straight into a memory-mapped uint8 cache
keyed by the files and the decoding options; later loads map the cache and decode nothing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DiskFull, UserError
from .arrays import open_memmap

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def _list_images(root: Path) -> list[Path]:
    """Image files under `root`, following symlinked folders like any other; each real folder is read
    once, so a link to an ancestor (a loop) or a second link to one folder adds nothing."""
    seen, found = set(), []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()  # the first of two links to one folder is the one kept, in name order
        found += [Path(dirpath) / f for f in filenames if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(p for p in found if p.is_file())


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
GREY_MODES = ("1", "L", "LA", "La", "I", "F") + SIXTEEN_BIT


class Changes:
    """What decoding did to a folder's images that a user may not expect, counted (data.notes words it)."""

    def __init__(self, mode: str, resize: int | None):
        self.mode, self.resize = mode, resize
        self.resized, self.enlarged, self.smallest, self.factor = 0, 0, None, 1.0
        self.to_rgb, self.to_grey, self.alpha = 0, 0, 0

    def add(self, was: tuple[int, int, bool, bool]) -> None:
        w, h, grey, alpha = was
        if self.resize and (w, h) != (self.resize, self.resize):
            self.resized += 1
            self.enlarged += self.resize > min(w, h)
            if self.smallest is None or w * h < self.smallest[0] * self.smallest[1]:
                self.smallest = (w, h)
            self.factor = max(self.factor, self.resize / min(w, h))
        self.to_rgb += grey and self.mode == "RGB"
        self.to_grey += not grey and self.mode == "L"
        self.alpha += alpha

    def record(self) -> dict:
        out = {}
        if self.resized:
            out["resized"] = {"count": self.resized, "to": self.resize, "enlarged": self.enlarged,
                              "smallest": list(self.smallest), "largest_factor": round(self.factor, 2)}
        if self.to_rgb:
            out["grey_to_rgb"] = self.to_rgb
        if self.to_grey:
            out["colour_to_grey"] = self.to_grey
        if self.alpha:
            out["alpha_dropped"] = self.alpha
        return out


def _to_8bit(im):
    """16-bit grayscale (PNG, TIFF) scaled to 8 bits (x 255 / 65535); Pillow's own conversion clips
    at 255, which turns such images almost white."""
    from PIL import Image
    if im.mode not in SIXTEEN_BIT:
        return im
    a = np.asarray(im).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(a * (255.0 / 65535.0)), 0, 255).astype(np.uint8), "L")


class _Decoder(torch.utils.data.Dataset):
    """Decode one image file to uint8 [C, H, W]; errors come back as text (raised by the caller)."""

    def __init__(self, paths: list[Path], mode: str, resize: Optional[int | str]):
        self.paths, self.mode, self.resize = paths, mode, None if resize == "auto" else resize  # (auto: after loading)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image, ImageOps
        p = self.paths[i]
        try:
            with Image.open(p) as im:
                im.load()
                im = _to_8bit(ImageOps.exif_transpose(im))  # as a viewer shows it: EXIF orientation applied
                if 0 in im.size:
                    return None, f"image {p} is {im.size[0]}x{im.size[1]} pixels (empty); remove or replace the file"
                alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
                was = (im.size[0], im.size[1], im.mode in GREY_MODES, alpha)
                im = im.convert(self.mode)
                if self.resize:
                    im = im.resize((self.resize, self.resize), Image.BILINEAR)
        except Exception as exc:  # PIL raises many types for damaged files
            return None, f"cannot decode image {p} ({exc}); remove or replace the file"
        a = np.asarray(im, dtype=np.uint8)
        return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), str(p), was


def _first_mode(path: Path, cfg: DataConfig) -> str:
    from PIL import Image
    try:
        with Image.open(path) as im:
            return "L" if (cfg.grayscale or im.mode in ("1", "L", "I", "I;16", "F")) else "RGB"
    except Exception as exc:
        raise UserError(f"cannot decode image {path} ({exc}); remove or replace the file") from None


def _decode(paths: list[Path], cfg: DataConfig, dest) -> dict:
    """Decode every image into `dest` (a uint8 [N, C, H, W] array, e.g. a memory map), in batches,
    with DataLoader workers for large folders. Returns what decoding changed (`Changes.record`)."""
    from ..progress import on_terminal, progress_bar

    mode = _first_mode(paths[0], cfg)
    workers = min(4, len(os.sched_getaffinity(0))) if len(paths) >= 2000 else 0
    loader = torch.utils.data.DataLoader(_Decoder(paths, mode, cfg.resize), batch_size=256, num_workers=workers,
                                         collate_fn=list)
    size, row, changes = None, 0, Changes(mode, None if cfg.resize == "auto" else cfg.resize)
    if len(paths) >= 2000 and not on_terminal():
        print(f"decoding {len(paths)} images (once; later loads read the cache)", file=sys.stderr)
    with progress_bar(len(paths) >= 2000, total=len(paths), desc="decoding images", unit="img") as bar:
        for batch in loader:
            for arr, info, *was in batch:
                if arr is None:
                    raise UserError(info)
                changes.add(was[0])
                if size is None:
                    size = arr.shape
                elif arr.shape != size:
                    raise UserError(f"{info} is {arr.shape[2]}x{arr.shape[1]} but earlier images are "
                                    f"{size[2]}x{size[1]}; pass --resize N to bring them to one size")
                dest[row] = arr
                row += 1
            bar.update(len(batch))
    return changes.record()


def _probe_shape(path: Path, cfg: DataConfig) -> tuple[int, int, int]:
    arr, info, *_ = _Decoder([path], _first_mode(path, cfg), cfg.resize)[0]
    if arr is None:
        raise UserError(info)
    return arr.shape


CACHE_SAMPLE = 64  # files whose bytes enter the fingerprint, beside every file's metadata


def _cache_file(root: Path, paths: list[Path], cfg: DataConfig) -> Path:
    """The cache of this folder's decoded images: named by the folder's resolved path and the decoding
    options (`decoded-ROOT-...`), and by a fingerprint of its files: each file's path, size, mtime,
    ctime and inode (a file replaced with `cp -p`, `rsync -a` or `tar` keeps its mtime, not its ctime or
    inode), plus the bytes of a sample of files. Recomputed at every load, so a cache never answers
    for other bytes."""
    resize = None if cfg.resize == "auto" else cfg.resize  # (auto resizes after loading: the cache of the originals)
    tag = hashlib.sha256(f"{root.resolve()}|gray={cfg.grayscale}|resize={resize}".encode()).hexdigest()[:12]
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}\n".encode())
    step = max(1, len(paths) // CACHE_SAMPLE)
    for p in paths[::step][:CACHE_SAMPLE]:
        h.update(hashlib.sha256(p.read_bytes()).digest())
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else root / ".unsuprnn_cache"
    return cache_dir / f"decoded-{tag}-{h.hexdigest()[:16]}.npy"


def _drop_stale_caches(cache: Path) -> None:
    """Remove this folder's caches for earlier contents (same folder and options, other fingerprint)
    and caches named the old way (by file metadata alone, which could answer for other bytes)."""
    tag = cache.name.split("-")[1]
    for old in cache.parent.glob("decoded-*.npy"):
        parts = old.stem.split("-")
        if old != cache and ((len(parts) == 3 and parts[1] == tag) or len(parts) == 2):
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)


def _preallocate(path: Path) -> None:
    """Reserve the disk space of a sparse file now, so that a full disk is an OSError here and not a
    SIGBUS later through the memory map."""
    size = path.stat().st_size
    with open(path, "rb+") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            block = b"\0" * (1 << 20)  # no fallocate on this filesystem: write the zeros
            for start in range(0, size, len(block)):
                fh.write(block[:min(len(block), size - start)])
            fh.flush()
            os.fsync(fh.fileno())


def load_folder_source(arg: str, cfg: DataConfig):
    """-> (images uint8 [N, C, H, W] memory map, labels, class names, splits or None, file paths, what decoding
    changed)."""
    from ..atomic import atomic_path, write_text

    root = Path(arg)
    split_dirs = [d for d in ("train", "test") if (root / d).is_dir()]
    groups = [(d, root / d) for d in split_dirs] or [(None, root)]
    listed = [(split_name, g, p) for split_name, g in groups for p in _list_images(g)
              if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    # classes are the top-level folders that really hold images (symlinked ones too)
    class_names = sorted({p.relative_to(g).parts[0] for _, g, p in listed if len(p.relative_to(g).parts) > 1})
    all_paths, all_labels, split_of = [], [], []
    for split_name, g, p in listed:
        rel = p.relative_to(g).parts
        all_paths.append(p)
        all_labels.append(class_names.index(rel[0]) if len(rel) > 1 else -1)
        split_of.append(split_name)
    if not all_paths:
        raise UserError(f"no images (.png/.jpg/.jpeg/.bmp) under {root}; put images in class subfolders or flat")
    cache = _cache_file(root, all_paths, cfg)
    notes = cache.with_suffix(".json")  # what decoding changed, kept beside the cache
    images, changes = None, None
    if cache.is_file():
        try:
            images, changes = open_memmap(cache), json.loads(notes.read_text())
        except Exception:
            images = None  # a damaged cache (or one kept without its notes) is rebuilt
    if images is None or len(images) != len(all_paths):
        shape = (len(all_paths),) + _probe_shape(all_paths[0], cfg)
        try:  # decode straight into a memory-mapped cache: bounded memory, decoded once
            with atomic_path(cache, suffix=".npy") as tmp:
                np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
                _preallocate(tmp)
                mm = np.lib.format.open_memmap(tmp, mode="r+")
                changes = _decode(all_paths, cfg, mm)
                mm.flush()
                del mm
            write_text(notes, json.dumps(changes))
            images = open_memmap(cache)
            _drop_stale_caches(cache)
        except (OSError, DiskFull) as exc:  # a read-only or full disk: decode into memory instead
            if isinstance(exc, DiskFull) or exc.errno in (errno.ENOSPC, errno.EDQUOT):
                print(f"warning: no space for the decoded-image cache in {cache.parent}; decoding into memory "
                      "instead (free some space or set data.cache_dir)", file=sys.stderr)
            images = np.empty(shape, dtype=np.uint8)
            changes = _decode(all_paths, cfg, images)
    splits = None
    if split_dirs:
        names = np.array([s or "" for s in split_of])
        splits = {s: torch.from_numpy(np.flatnonzero(names == s)).long() for s in split_dirs}
    return (torch.from_numpy(images), torch.tensor(all_labels, dtype=torch.long), class_names, splits,
            [str(p) for p in all_paths], changes)
