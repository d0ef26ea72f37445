"""Image sources, keyed by the dataset spec (the names are in specs.py): `digits`, torchvision names, `idx:DIR`,
`folder:DIR`, `npz:FILE`. Each returns uint8 [N, C, H, W] images, labels (-1 = unknown),
class names and, where the source has them, its own splits.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .arrays import load_npy_source, load_npz_source, numbered_classes
from .folder import load_folder_source
from .images import Images, Raw, stratified_split
from ..names.datasets import EMNIST_SPLITS, check_spec



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
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one MNIST-format idx file (raw or gzip) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4 + 4 * 255)
            expected = _idx_data_bytes(head, path)
            raw = head + fh.read(expected + 4 + 4 * 255 + 1 - len(head))  # never more than the header says
    except (OSError, EOFError, ValueError) as exc:
        raise UserError(f"cannot read idx file {path} ({exc}); replace it with a complete copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path} is not an idx file (bad magic number); use MNIST-format idx files")
    dtypes = IDX_DTYPES
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


def _idx_data_bytes(head: bytes, path: Path) -> int:
    """The data size an idx header announces, refused before reading when it would not fit in memory
    (a small .gz can announce gigabytes)."""
    from ..budget import check_memory
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
        return 0  # not an idx file: said by read_idx
    dims = np.frombuffer(head, dtype=">u4", count=head[3], offset=4).astype(np.float64)
    nbytes = int(np.prod(dims)) * np.dtype(IDX_DTYPES[head[2]]).itemsize
    check_memory(2 * nbytes, f"{path} ({' x '.join(str(int(d)) for d in dims)} values)",
                 "use a smaller set, or convert it to npy:FILE (memory-mapped)")
    return nbytes


def _find_idx(root: Path, prefix: str, kind: str) -> Optional[Path]:
    for p in sorted(root.iterdir()):
        n = p.name.lower()
        if n.startswith(prefix) and kind in n and ("idx" in n or n.endswith(".gz") or "ubyte" in n):
            return p
    return None


def load_idx_source(arg: str, cfg: DataConfig) -> Raw:
    root = Path(arg)
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



# ----------------------------------------------------------------------------- registry
# the loaders of data/specs.py's names and prefixes
PREFIXED = {"idx": load_idx_source, "folder": load_folder_source, "npz": load_npz_source, "npy": load_npy_source}


def load_source(cfg: DataConfig, seed: int) -> Images:
    """Load the dataset named by `cfg.dataset`; sources without splits get a seeded stratified one."""
    spec = cfg.dataset
    check_spec(spec)
    prefix, _, arg = spec.partition(":")
    if arg and prefix in PREFIXED:
        raw = PREFIXED[prefix](arg, cfg)
    elif spec == "digits":
        raw = load_digits_source(spec, cfg)
    else:
        raw = load_torchvision_source(spec, cfg)
    images, labels, classes, splits, paths, *changes = raw  # (a folder says what decoding changed)
    split_info = {"source": "own"}
    if splits is None:
        splits = stratified_split(labels, cfg.test_fraction, seed)
        split_info = {"source": "stratified", "test_fraction": cfg.test_fraction, "seed": seed}
    split_info["sizes"] = {k: int(len(v)) for k, v in splits.items()}
    return Images(images=images, labels=labels, classes=classes, splits=splits, paths=paths,
                  spec=spec, split_info=split_info, changes=changes[0] if changes else {})
