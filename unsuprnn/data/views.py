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
# view auto (BENCHMARKS.md, "A view that scales"): at 64 and 96 px, rows read the photograph protocol worse than
# raw pixels (kNN 67.5 and 65.0 against 75) where patches reached 85.0 and 86.7 in the same 90 s; 6 x 6 patches of a
# 96 px image trained 1.5x faster than 8 x 8 and read as well (84.6 and 81.2)
ROWS_UP_TO = 32    # images of at most this many pixels a side are read as rows
GRID = 6           # larger images as about GRID x GRID patches (ties: the more patches)


def auto_patch(h: int, w: int) -> int | None:
    """The patch side that cuts an h x w image into about GRID x GRID squares: a divisor of both sides, from 4
    to 16 patches along the longer side, nearest GRID, the smaller of two as near (None where no divisor gives
    that): 64 px -> 8 (8 x 8 patches), 96 px -> 16 (6 x 6)."""
    from math import gcd
    options = [d for d in range(1, gcd(h, w) + 1) if gcd(h, w) % d == 0 and 4 <= max(h, w) // d <= 16]
    return min(options, key=lambda d: (abs(max(h, w) / d - GRID), d)) if options else None


def resolve_view(data, shape: tuple[int, int, int], kind_views: tuple = ()) -> str | None:
    """Resolve `auto` in data.view and data.patch for images of `shape` (C, H, W), in place; returns what auto
    chose and why (None where nothing was auto). kind_views: the views the encoder kind can read
    (names/encoders.py; empty: every view)."""
    _, h, w = shape
    said = None
    if data.view == "auto":
        patch = auto_patch(h, w)
        if kind_views and "rows" not in kind_views:
            data.view, said = kind_views[0], f"view auto: {kind_views[0]}, what the encoder reads"
        elif max(h, w) <= ROWS_UP_TO:
            data.view, said = "rows", f"view auto: rows, for images of at most {ROWS_UP_TO} px a side"
        elif patch is None:
            data.view, said = "rows", f"view auto: rows, as no patch side cuts {h}x{w} images into a grid"
        else:
            data.view, said = "patches", f"view auto: about {GRID} x {GRID} patches, for images over {ROWS_UP_TO} px"
    if data.patch == "auto":
        data.patch = (auto_patch(h, w) or 1) if data.view == "patches" else 4
    return said


def make_view(name: str, shape: tuple[int, int, int], patch: int = 4):
    """The view called `name` for images of `shape` (C, H, W)."""
    if name not in VIEWS:
        raise UserError(f"unknown view '{name}'; use one of: {', '.join(VIEWS)}")
    if name == "patches":
        return PatchSequence(shape, patch)
    return VIEWS[name](shape)
