"""Preprocessing applied once to the whole uint8 image set: grayscale, resize, blur, binarize;
and the per-channel mean/std of the train split used to normalize batches later."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..errors import UserError

LUMA = torch.tensor([0.299, 0.587, 0.114])


def _chunks(n: int, size: int = 4096):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def preprocess(images: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, C', H', W'] with the options of `cfg` (chunked, bounded memory)."""
    if not (cfg.grayscale or cfg.resize or cfg.blur > 0 or cfg.binarize is not None):
        return images
    if cfg.binarize is not None and not 0.0 <= cfg.binarize <= 1.0:
        raise UserError(f"binarize threshold must be in [0, 1], got {cfg.binarize}")
    if cfg.resize is not None and cfg.resize < 1:
        raise UserError(f"resize must be a positive side length, got {cfg.resize}")
    from ..budget import check_memory
    c = 1 if cfg.grayscale else images.shape[1]
    h, w = (cfg.resize, cfg.resize) if cfg.resize else images.shape[2:]
    check_memory(len(images) * c * h * w, f"{len(images)} preprocessed images of {c} x {h} x {w}",
                 "pass a smaller --resize or use a smaller set")
    out = []
    for sl in _chunks(len(images)):
        x = images[sl].float() / 255.0
        if cfg.grayscale and x.shape[1] == 3:
            x = (x * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
        if cfg.resize and tuple(x.shape[-2:]) != (cfg.resize, cfg.resize):
            x = F.interpolate(x, size=(cfg.resize, cfg.resize), mode="bilinear", antialias=True,
                              align_corners=False)
        if cfg.blur > 0:
            from torchvision.transforms.functional import gaussian_blur
            x = gaussian_blur(x, [blur_kernel(cfg.blur, x.shape[-2:])] * 2, [cfg.blur, cfg.blur])
        if cfg.binarize is not None:
            x = (x > cfg.binarize).float()
        out.append((x.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.cat(out)


def blur_kernel(sigma: float, size: tuple[int, int]) -> int:
    """The Gaussian kernel's side for `sigma` (3 sigma each way), refused where images of `size` cannot
    hold it (its reflected padding must stay inside the image)."""
    k = 2 * int(round(3 * sigma)) + 1
    if k // 2 >= min(size):
        most = max((min(size) - 1) / 3, 0.1)
        raise UserError(f"--blur {sigma:g} needs a {k}x{k} kernel, more than {size[0]}x{size[1]} images can hold; "
                        f"pass --blur at most {most:.2g} (or --resize the images larger)")
    return k


def check_not_blank(images: torch.Tensor, indices: torch.Tensor, what: str) -> None:
    """A UserError where every image (of a sample of `indices`) is the same, e.g. all black after
    preprocessing: training on it would end at chance level without a word."""
    idx = indices[:2048]
    if len(idx) > 1 and bool((images[idx] == images[idx[:1]]).all()):
        raise UserError(f"every image of {what} is the same (e.g. all black) after preprocessing; check "
                        "--blur, --binarize and --resize, and the images themselves")


STATS_SAMPLE = 65536  # images read for mean/std; a seeded sample of larger sets (bounded I/O and memory)


def channel_stats(images: torch.Tensor, indices: torch.Tensor | None = None,
                  seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units of uint8 [N, C, H, W] rows `indices` (default all).

    At most STATS_SAMPLE rows are read (seeded windows beyond that); chunked float64 sums.
    """
    idx = torch.arange(len(images)) if indices is None else indices
    if len(idx) > STATS_SAMPLE:
        # 64 seeded windows of consecutive rows: few pages of a memory-mapped file are touched
        window = STATS_SAMPLE // 64
        starts = torch.randperm(len(idx) // window, generator=torch.Generator().manual_seed(seed))[:64] * window
        idx = idx[(starts.sort().values[:, None] + torch.arange(window)).flatten()]
    c = images.shape[1]
    s, s2, n = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
    for sl in _chunks(len(idx)):
        x = images[idx[sl]].double() / 255.0
        s += x.sum((0, 2, 3))
        s2 += (x * x).sum((0, 2, 3))
        n += x.numel() // c
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.clamp_min(1e-3).tolist()
