"""`Images`: what every source yields, and the seeded stratified split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..errors import UserError

# what a source returns: (images, labels, classes, splits or None, paths or None)
Raw = tuple[torch.Tensor, torch.Tensor, list[str], Optional[dict[str, torch.Tensor]], Optional[list[str]]]


@dataclass
class Images:
    """A labelled image set.

    images: uint8 [N, C, H, W]; labels: int64 [N] (-1 = unknown); classes: names by label index;
    splits: split name -> int64 indices into images; paths: source file per image (folders only).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    splits: dict[str, torch.Tensor]
    paths: Optional[list[str]] = None
    spec: str = ""
    split_info: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)  # what loading changed in the images (a folder's: data/folder.py)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise UserError(f"{self.spec}: images must be uint8 [N, C, H, W], got {self.images.dtype} "
                            f"{list(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise UserError(f"{self.spec}: {len(self.labels)} labels for {len(self.images)} images; "
                            "give one label per image")
        if len(self.images) == 0:
            raise UserError(f"{self.spec}: no images found; point the dataset at a non-empty source")
        if 0 in self.images.shape[1:]:
            c, h, w = self.images.shape[1:]
            raise UserError(f"{self.spec}: images are {h}x{w} pixels with {c} channel(s), which is empty; "
                            "give images of at least 1x1 pixel")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def has_labels(self) -> bool:
        return bool((self.labels >= 0).any())

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images [n, C, H, W] and labels [n] of split `name` ('all' = every image)."""
        if name == "all":
            return self.images, self.labels
        if name not in self.splits:
            raise UserError(f"{self.spec} has no split '{name}'; available: {', '.join(self.splits)}, all")
        idx = self.splits[name]
        return self.images[idx], self.labels[idx]


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic split: per class, a seeded shuffle and the first round(n * f) go to test.

    Unlabelled samples (-1) form one group of their own. Indices are sorted within each split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    y = labels.numpy()
    test = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        rng.shuffle(members)
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.array([], dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[test_idx] = False
    return {"train": torch.from_numpy(np.flatnonzero(mask)).long(),
            "test": torch.from_numpy(test_idx).long()}
