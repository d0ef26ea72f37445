"""Image <-> sequence views. Each view maps a batch x: [B, C, H, W] to a sequence [B, T, D] and
back exactly, on any device, with reshapes and permutes only (no Python loop over images).

    rows     T = H,               D = C * W   (feature order: channel, then column)
    columns  T = W,               D = C * H
    patches  T = (H/P) * (W/P),   D = C * P * P, patches in raster order
    snake    T = H,               D = C * W   (odd rows read right to left)
"""

from __future__ import annotations

import torch

from ..errors import UserError


class RowSequence:
    name = "rows"

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape

    def seq_shape(self) -> tuple[int, int]:
        c, h, w = self.shape
        return h, c * w

    def grid(self) -> tuple[int, int] | None:
        """(rows, columns) of a grid of steps: only the patch view's steps form one."""
        return None

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, h, c * w)

    def to_image(self, s: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        return s.reshape(s.shape[0], h, c, w).permute(0, 2, 1, 3).contiguous()


class ColumnSequence(RowSequence):
    name = "columns"

    def seq_shape(self) -> tuple[int, int]:
        c, h, w = self.shape
        return w, c * h

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, w, c * h)

    def to_image(self, s: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        return s.reshape(s.shape[0], w, c, h).permute(0, 2, 3, 1).contiguous()


class SnakeSequence(RowSequence):
    name = "snake"

    @staticmethod
    def _flip_odd_rows(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, :, 1::2] = x[:, :, 1::2].flip(-1)
        return x

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        return super().to_sequence(self._flip_odd_rows(x))

    def to_image(self, s: torch.Tensor) -> torch.Tensor:
        return self._flip_odd_rows(super().to_image(s))


class PatchSequence:
    name = "patches"

    def __init__(self, shape: tuple[int, int, int], patch: int):
        c, h, w = shape
        if patch < 1 or h % patch or w % patch:
            raise UserError(f"patch size {patch} does not divide the {h}x{w} image; "
                            f"choose --patch from the divisors of {h} and {w} or --resize the images")
        self.shape, self.patch = shape, patch

    def seq_shape(self) -> tuple[int, int]:
        c, h, w = self.shape
        p = self.patch
        return (h // p) * (w // p), c * p * p

    def grid(self) -> tuple[int, int]:
        c, h, w = self.shape
        return h // self.patch, w // self.patch

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)

    def to_image(self, s: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        p = self.patch
        x = s.reshape(s.shape[0], h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(s.shape[0], c, h, w)


VIEWS = {"rows": RowSequence, "columns": ColumnSequence, "snake": SnakeSequence, "patches": PatchSequence}


def make_view(name: str, shape: tuple[int, int, int], patch: int = 4):
    """The view called `name` for images of `shape` (C, H, W)."""
    if name not in VIEWS:
        raise UserError(f"unknown view '{name}'; use one of: {', '.join(VIEWS)}")
    if name == "patches":
        return PatchSequence(shape, patch)
    return VIEWS[name](shape)
