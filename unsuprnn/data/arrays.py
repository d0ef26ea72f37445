"""`npz:FILE` and `npy:FILE` sources, and what every array source shares: image layouts
([N,H,W], [N,H,W,C], [N,C,H,W]), memory maps without read-ahead, and label checks."""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .images import Raw


def array_to_nchw(arr: np.ndarray, where: str) -> np.ndarray:
    """[N,H,W], [N,H,W,C] or [N,C,H,W], uint8 or float in [0,1] -> uint8 [N,C,H,W]."""
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        if arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3):
            arr = arr.transpose(0, 3, 1, 2)
            if arr.shape[1] == 4:
                arr = arr[:, :3]  # drop alpha
        elif arr.shape[1] not in (1, 3):
            raise UserError(f"{where}: cannot tell the channel axis of shape {list(arr.shape)}; "
                            "use [N,H,W], [N,H,W,C] or [N,C,H,W] with C in 1, 3")
    else:
        raise UserError(f"{where}: images must be [N,H,W], [N,H,W,C] or [N,C,H,W], got shape {list(arr.shape)}")
    if arr.dtype == np.uint8:
        # a memory map stays one (a strided view); other arrays are made contiguous
        return arr if isinstance(arr, np.memmap) else np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise UserError(f"{where}: float images must be finite and in [0, 1]; rescale them or save uint8")
        return np.ascontiguousarray(np.round(arr * 255).astype(np.uint8))
    raise UserError(f"{where}: images must be uint8 or float in [0, 1], got {arr.dtype}")


def _npz_member_memmap(path: Path, member: str) -> Optional[np.ndarray]:
    """Memory-map an uncompressed uint8 array stored in an .npz (np.savez), or None if it cannot be.

    An .npz is a zip; a member stored without compression is a plain .npy at a fixed offset.
    """
    import struct
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            fh.seek(start)
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
    if fortran or dtype != np.uint8 or len(shape) not in (3, 4):
        return None
    return _no_readahead(np.memmap(path, dtype=np.uint8, mode="c", offset=offset, shape=shape))


def check_npz_member_size(path: Path, member: str) -> None:
    """Refuse, from its header alone, an .npz member that would not fit in memory once decompressed (a few
    megabytes of compressed zeros can hold gigabytes)."""
    import zipfile

    from ..budget import check_memory
    with zipfile.ZipFile(path) as zf, zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        shape, _, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)(fh)
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    # float images become uint8 through a float64 copy: count what the conversion holds at once
    peak = nbytes + (int(np.prod(shape, dtype=np.float64)) * 9 if dtype.kind == "f" else 0)
    check_memory(peak, f"{path}: images {list(shape)} of {dtype} (compressed)",
                 "save them uncompressed (np.savez, memory-mapped) or as npy:FILE, or use a smaller set")


def load_npz_source(arg: str, cfg: DataConfig) -> Raw:
    """npz:FILE with `images` (and optional `labels`). Uncompressed uint8 images (np.savez) are
    memory-mapped; compressed ones are read into memory."""
    path = Path(arg)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise UserError(f"{path} has no 'images' array (found: {', '.join(z.files) or 'none'}); "
                                "save it with np.savez(FILE, images=..., labels=...)")
            labels = z["labels"] if "labels" in z.files else None
            arr = _npz_member_memmap(path, "images.npy")
            if arr is None:  # compressed (np.savez_compressed) or unusual: read into memory, if it fits
                check_npz_member_size(path, "images.npy")
                arr = z["images"]
    except UserError:
        raise
    except Exception as exc:  # zipfile/pickle/value errors: the file itself is damaged
        raise UserError(f"cannot read {path} as npz ({type(exc).__name__}: {exc}); write it again with np.savez") from None
    images = array_to_nchw(arr, str(path))
    labels = _labels_array(labels, len(images), str(path))
    return torch.from_numpy(images), torch.from_numpy(labels), numbered_classes(labels, str(path)), None, None


MIN_CLASS_ROOM = 1000  # class ids may run up to this even on a few images (a subset of a larger label set)


def numbered_classes(labels: np.ndarray, where: str) -> list[str]:
    """Class names "0".."C-1" for integer labels (-1 = unknown), C = the largest label + 1. A label far
    above the number of images (a corrupt or unnumbered file) is refused before C names are made."""
    if not (labels >= 0).any():
        return []
    top = int(labels.max())
    room = max(len(labels), MIN_CLASS_ROOM)
    if top >= room:
        raise UserError(f"{where}: label {top} is far above the {len(labels)} images (class ids must be below "
                        f"{room}); renumber the classes 0..C-1")
    return [str(i) for i in range(top + 1)]


def _labels_array(labels, n: int, where: str) -> np.ndarray:
    """Validate optional labels: 1-D integers, one per image, >= -1 (-1 = unknown)."""
    if labels is None:
        return np.full(n, -1, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{where}: labels must be a 1-D integer array, got {labels.dtype} {list(labels.shape)}")
    if len(labels) != n:
        raise UserError(f"{where}: {len(labels)} labels for {n} images; give one label per image")
    if (labels < -1).any():
        raise UserError(f"{where}: labels must be >= 0 (or -1 for unknown)")
    return labels.astype(np.int64)


def open_memmap(path: Path) -> np.ndarray:
    """Memory-map a .npy for random batch access: copy-on-write (writable, the file is never
    changed) and without read-ahead, so only the pages of the rows read come into memory."""
    return _no_readahead(np.load(path, mmap_mode="c", allow_pickle=False))


def _no_readahead(arr: np.ndarray) -> np.ndarray:
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_RANDOM"):
        mm.madvise(mmap.MADV_RANDOM)
    return arr


def load_npy_source(arg: str, cfg: DataConfig) -> Raw:
    """npy:IMAGES.npy, memory-mapped (uint8 stays on disk and is read batch by batch); labels from
    IMAGES.labels.npy beside it when that file exists."""
    path = Path(arg)
    try:
        arr = open_memmap(path)
    except Exception as exc:
        raise UserError(f"cannot read {path} as .npy ({type(exc).__name__}: {exc}); write it again with np.save") from None
    images = array_to_nchw(arr, str(path))
    lab_path = path.with_name(path.stem + ".labels.npy")
    labels = None
    if lab_path.is_file():
        try:
            labels = np.load(lab_path, allow_pickle=False)
        except Exception as exc:
            raise UserError(f"cannot read {lab_path} ({type(exc).__name__}); write it again with np.save") from None
    labels = _labels_array(labels, len(images), str(lab_path))
    return torch.from_numpy(images), torch.from_numpy(labels), numbered_classes(labels, str(lab_path)), None, None
