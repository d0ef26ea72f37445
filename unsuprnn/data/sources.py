"""Image sources, keyed by the dataset spec: `digits`, torchvision names, `idx:DIR`,
`folder:DIR`, `npz:FILE`. Each returns uint8 [N, C, H, W] images, labels (-1 = unknown),
class names and, where the source has them, its own splits.
"""

from __future__ import annotations

import gzip
import mmap
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .folder import load_folder_source
from .images import Images, stratified_split

# (images, labels, classes, splits or None, paths or None)
Raw = tuple[torch.Tensor, torch.Tensor, list[str], Optional[dict[str, torch.Tensor]], Optional[list[str]]]


# ----------------------------------------------------------------------------- digits
def load_digits_source(_: str, cfg: DataConfig) -> Raw:
    from sklearn.datasets import load_digits

    d = load_digits()
    # pixel values are counts 0..16; scale to the full uint8 range
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return (torch.from_numpy(images), torch.from_numpy(d.target).long(),
            [str(i) for i in range(10)], None, None)


# ----------------------------------------------------------------------------- torchvision
def _tv_mnist_like(cls_name: str, **kw) -> Callable:
    def build(root: str, train: bool, download: bool):
        import torchvision.datasets as tvd
        return getattr(tvd, cls_name)(root, train=train, download=download, **kw)
    return build


def _tv_svhn(root: str, train: bool, download: bool):
    import torchvision.datasets as tvd
    return tvd.SVHN(root, split="train" if train else "test", download=download)


TORCHVISION = {
    "mnist": _tv_mnist_like("MNIST"),
    "fashion-mnist": _tv_mnist_like("FashionMNIST"),
    "kmnist": _tv_mnist_like("KMNIST"),
    "cifar10": _tv_mnist_like("CIFAR10"),
    "cifar100": _tv_mnist_like("CIFAR100"),
    "svhn": _tv_svhn,
}
EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


def _tv_arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    labels = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if data.ndim == 3:
        data = data[:, None]
    elif data.shape[-1] in (1, 3) and data.shape[1] not in (1, 3):  # CIFAR stores NHWC
        data = data.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(data, dtype=np.uint8), labels.astype(np.int64)


def load_torchvision_source(name: str, cfg: DataConfig) -> Raw:
    if name.startswith("emnist-"):
        split = name.split("-", 1)[1]
        if split not in EMNIST_SPLITS:
            raise UserError(f"unknown EMNIST split '{split}'; use one of: "
                            + ", ".join(f"emnist-{s}" for s in EMNIST_SPLITS))
        import torchvision.datasets as tvd

        def build(root, train, download):
            return tvd.EMNIST(root, split=split, train=train, download=download)
    else:
        build = TORCHVISION[name]
    parts, classes = {}, None
    for split_name, train in (("train", True), ("test", False)):
        try:
            ds = build(cfg.data_dir, train, cfg.download)
        except RuntimeError as exc:
            if "not found" in str(exc).lower() or "download=True" in str(exc):
                raise UserError(f"dataset '{name}' not found under {os.path.abspath(cfg.data_dir)}; "
                                "fetch it with --download (needs network) or point --data-dir at it") from None
            raise UserError(f"dataset '{name}' under {cfg.data_dir} could not be read ({exc}); "
                            "delete it and fetch it again with --download") from None
        data, labels = _tv_arrays(ds)
        if name.startswith("emnist-"):
            data = data.transpose(0, 1, 3, 2)  # EMNIST is stored transposed
        parts[split_name] = (data, labels)
        classes = [str(c) for c in getattr(ds, "classes", [])] or None
    images = np.concatenate([parts["train"][0], parts["test"][0]])
    labels = np.concatenate([parts["train"][1], parts["test"][1]])
    if name == "emnist-letters":
        labels = labels - 1  # letters are 1..26 in torchvision
        classes = classes[1:] if classes and len(classes) == 27 else classes
    n_train = len(parts["train"][0])
    splits = {"train": torch.arange(n_train), "test": torch.arange(n_train, len(images))}
    n_cls = int(labels.max()) + 1
    if not classes or len(classes) != n_cls:
        classes = [str(i) for i in range(n_cls)]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels).long(), classes, splits, None


# ----------------------------------------------------------------------------- idx
def read_idx(path: Path) -> np.ndarray:
    """Parse one MNIST-format idx file (raw or gzip) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read idx file {path} ({exc}); replace it with a complete copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path} is not an idx file (bad magic number); use MNIST-format idx files")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise UserError(f"{path}: unknown idx data type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    offset = 4 + 4 * ndim
    if len(raw) - offset != expected:
        raise UserError(f"{path} is truncated or padded: header says {expected} bytes of data, "
                        f"file holds {len(raw) - offset}; replace it with a complete copy")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims)


def _find_idx(root: Path, prefix: str, kind: str) -> Optional[Path]:
    for p in sorted(root.iterdir()):
        n = p.name.lower()
        if n.startswith(prefix) and kind in n and ("idx" in n or n.endswith(".gz") or "ubyte" in n):
            return p
    return None


def load_idx_source(arg: str, cfg: DataConfig) -> Raw:
    root = Path(arg)
    if not root.is_dir():
        raise UserError(f"idx directory not found: {root}; pass idx:DIR with train-/t10k- idx files")
    parts = {}
    for split_name, prefix in (("train", "train"), ("test", "t10k")):
        img_p, lab_p = _find_idx(root, prefix, "images"), _find_idx(root, prefix, "labels")
        if img_p is None:
            continue
        imgs = read_idx(img_p)
        if imgs.ndim != 3 or imgs.dtype != np.uint8:
            raise UserError(f"{img_p}: expected uint8 images [N, H, W], got {imgs.dtype} {list(imgs.shape)}")
        if lab_p is not None:
            labels = read_idx(lab_p).astype(np.int64).reshape(-1)
            if len(labels) != len(imgs):
                raise UserError(f"{lab_p} holds {len(labels)} labels for {len(imgs)} images in {img_p}; "
                                "use the matching pair of files")
        else:
            labels = np.full(len(imgs), -1, dtype=np.int64)
        parts[split_name] = (imgs, labels)
    if not parts:
        raise UserError(f"no idx image files in {root}; expected names like "
                        "train-images-idx3-ubyte(.gz) or t10k-images-idx3-ubyte(.gz)")
    names = list(parts)
    images = np.concatenate([parts[n][0] for n in names])[:, None]
    labels = np.concatenate([parts[n][1] for n in names])
    splits, start = {}, 0
    for n in names:
        splits[n] = torch.arange(start, start + len(parts[n][0]))
        start += len(parts[n][0])
    if len(splits) == 1:
        splits = None  # one file pair only: split it ourselves
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), \
        numbered_classes(labels, str(root)), splits, None


# ----------------------------------------------------------------------------- npz
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


def load_npz_source(arg: str, cfg: DataConfig) -> Raw:
    """npz:FILE with `images` (and optional `labels`). Uncompressed uint8 images (np.savez) are
    memory-mapped; compressed ones are read into memory."""
    path = Path(arg)
    if not path.is_file():
        raise UserError(f"npz file not found: {path}; pass npz:FILE with an 'images' array")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise UserError(f"{path} has no 'images' array (found: {', '.join(z.files) or 'none'}); "
                                "save it with np.savez(FILE, images=..., labels=...)")
            labels = z["labels"] if "labels" in z.files else None
            arr = _npz_member_memmap(path, "images.npy")
            if arr is None:  # compressed (np.savez_compressed) or unusual: read into memory
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
    if not path.is_file():
        raise UserError(f"npy file not found: {path}; pass npy:FILE.npy holding uint8 images")
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


# ----------------------------------------------------------------------------- registry
PREFIXED = {"idx": load_idx_source, "folder": load_folder_source, "npz": load_npz_source, "npy": load_npy_source}


def dataset_names() -> list[str]:
    return (["digits"] + list(TORCHVISION) + [f"emnist-{s}" for s in EMNIST_SPLITS]
            + [f"{p}:PATH" for p in PREFIXED])


def load_source(cfg: DataConfig, seed: int) -> Images:
    """Load the dataset named by `cfg.dataset`; sources without splits get a seeded stratified one."""
    spec = cfg.dataset
    prefix, _, arg = spec.partition(":")
    if arg and prefix in PREFIXED:
        raw = PREFIXED[prefix](arg, cfg)
    elif spec == "digits":
        raw = load_digits_source(spec, cfg)
    elif spec in TORCHVISION or spec.startswith("emnist-"):
        raw = load_torchvision_source(spec, cfg)
    else:
        raise UserError(f"unknown dataset '{spec}'; use one of: {', '.join(dataset_names())}")
    images, labels, classes, splits, paths = raw
    split_info = {"source": "own"}
    if splits is None:
        splits = stratified_split(labels, cfg.test_fraction, seed)
        split_info = {"source": "stratified", "test_fraction": cfg.test_fraction, "seed": seed}
    split_info["sizes"] = {k: int(len(v)) for k, v in splits.items()}
    return Images(images=images, labels=labels, classes=classes, splits=splits, paths=paths,
                  spec=spec, split_info=split_info)
