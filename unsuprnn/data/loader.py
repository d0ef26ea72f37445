"""Batches drawn by index from a uint8 image tensor that lives on the training device when it
fits, or in pinned CPU memory otherwise. No per-image Python runs while iterating."""

from __future__ import annotations

from typing import Iterator

import torch

# Keep the dataset resident on a GPU when it takes at most this share of the free memory.
RESIDENT_FRACTION = 0.25


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= RESIDENT_FRACTION * free


class BatchLoader:
    """Iterate (images uint8 [B, C, H, W], labels [B], indices [B]) on `device`.

    indices: the subset of rows to draw from (a split), default all. shuffle: a new permutation
    each epoch from `generator` (a CPU generator, so the order is the same on every device).
    rank/world_size: each process takes its own slice of the permutation. max_batches: cap on
    batches per epoch (0 = all), for datasets too large to sweep every epoch.
    Images that do not fit on the device stay where they are (RAM or a memory map) and each batch
    is gathered into pinned memory and copied asynchronously.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, device: torch.device,
                 shuffle: bool = True, drop_last: bool = True, generator: torch.Generator | None = None,
                 rank: int = 0, world_size: int = 1, indices: torch.Tensor | None = None, max_batches: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator, self.rank, self.world_size = generator, rank, world_size
        self.indices = torch.arange(len(images)) if indices is None else indices.long()
        self.max_batches = max_batches
        self.resident = fits_on_device(images.numel(), self.device)
        if self.resident:
            self.images = images.to(self.device)
            self.labels = labels.to(self.device)
        else:
            self.images, self.labels = images, labels
        self.n = len(self.indices)
        per_rank = self.n // world_size
        if drop_last and per_rank < batch_size:
            # a tiny split still gives one (smaller) batch rather than none
            self.batch_size = max(per_rank, 1)

    def __len__(self) -> int:
        per_rank = self.n // self.world_size
        n = per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)
        return min(n, self.max_batches) if self.max_batches > 0 else n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        order = self.indices[order[self.rank::self.world_size][: (self.n // self.world_size)]]
        # one copy of the epoch's order to the device, so that a step launches no host-to-device copy
        dev_order = order.to(self.device, non_blocking=True) if self.resident else None
        for i in range(len(self)):
            batch = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = order[batch]
            if self.resident:
                dev_idx = dev_order[batch]
                yield self.images[dev_idx], self.labels[dev_idx], idx
            else:
                x = self.images[idx]
                x = (x.pin_memory() if self.device.type == "cuda" else x).to(self.device, non_blocking=True)
                y = self.labels[idx].to(self.device, non_blocking=True)
                yield x, y, idx
