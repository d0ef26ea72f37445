"""Batched augmentation with per-sample random parameters, on the batch's own device.

One `affine_grid` + `grid_sample` call applies every sample's crop/zoom, rotation, translation,
shear and flip; jitter, noise and erasing are broadcast arithmetic with per-sample tensors. No
Python loop runs over the images. A `torch.Generator` on the same device makes draws
reproducible: the same seed gives the same parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import AugmentConfig
from ..errors import UserError


LUMA = torch.tensor([0.299, 0.587, 0.114])
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
YIQ_INV = torch.linalg.inv(YIQ)


class BatchAugment:
    """Random augmentation of x: float [B, C, H, W] in [0, 1] -> float [B, C, H, W] in [0, 1]."""

    def __init__(self, cfg: AugmentConfig):
        if not 0.0 < cfg.crop_scale <= 1.0:
            raise UserError(f"augment.crop_scale must be in (0, 1], got {cfg.crop_scale}")
        for name in ("rotate", "translate", "shear", "noise", "brightness", "contrast"):
            if getattr(cfg, name) < 0:
                raise UserError(f"augment.{name} must be >= 0, got {getattr(cfg, name)}")
        if not 0.0 <= cfg.erase_prob <= 1.0 or not 0.0 <= cfg.erase_max <= 1.0:
            raise UserError("augment.erase_prob and augment.erase_max must be in [0, 1]")
        if cfg.shear >= 80:
            raise UserError(f"augment.shear must be below 80 degrees, got {cfg.shear}")
        self.cfg = cfg

    @property
    def uses_affine(self) -> bool:
        c = self.cfg
        return c.crop_scale < 1 or c.rotate > 0 or c.translate > 0 or c.shear > 0 or c.hflip is True

    @property
    def uses_colour(self) -> bool:
        c = self.cfg  # (colour_jitter auto, unresolved, jitters: what every run did before it existed)
        return c.colour_jitter is not False and (c.saturation > 0 or c.hue > 0 or c.grayscale > 0)

    def sample(self, n: int, device: torch.device | str, generator: torch.Generator | None,
               channels: int = 1) -> dict:
        """Draw per-sample parameters, each a tensor [n] on `device` (colour ones for 3 channels only)."""
        c = self.cfg

        def u(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, device=device, generator=generator)

        log_s = -math.log(c.crop_scale)
        return {
            "scale": torch.exp(u(-log_s, log_s)),
            "angle": u(-c.rotate, c.rotate) * (math.pi / 180),
            "tx": u(-c.translate, c.translate),
            "ty": u(-c.translate, c.translate),
            "shear": u(-c.shear, c.shear) * (math.pi / 180),
            "flip": torch.where(u(0, 1) < (0.5 if c.hflip is True else 0.0), -1.0, 1.0),  # (auto unresolved: off)
            "brightness": u(1 - c.brightness, 1 + c.brightness),
            "contrast": u(1 - c.contrast, 1 + c.contrast),
            "noise": u(0, c.noise),
            "erase": u(0, 1) < c.erase_prob,
            "erase_band": u(0, 1) < 0.5,          # a band of whole rows, else a block
            "erase_h": u(0.1, 1) * c.erase_max,
            "erase_w": u(0.1, 1) * c.erase_max,
            "erase_y": u(0, 1),
            "erase_x": u(0, 1),
        } | (self._colour(u) if channels == 3 and self.uses_colour else {}) | (
            # drawn only when used, so that runs without them keep their exact draws (a run saved before colour
            # augmentation existed resumes with the very draws it stopped with)
            {"invert": u(0, 1) < c.invert} if c.invert > 0 else {})

    def _colour(self, u) -> dict:
        c = self.cfg
        return {"saturation": u(1 - c.saturation, 1 + c.saturation), "hue": u(-c.hue, c.hue) * (2 * math.pi),
                "gray": u(0, 1) < c.grayscale}

    @staticmethod
    def colour(x: torch.Tensor, p: dict) -> torch.Tensor:
        """Saturation, hue (a rotation about the grey axis in YIQ space, which keeps luma) and grayscale,
        per sample, of RGB x [B, 3, H, W]."""
        b = x.shape[0]
        luma = (x * LUMA.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = luma + (x - luma) * p["saturation"].view(b, 1, 1, 1)
        cos, sin = torch.cos(p["hue"]), torch.sin(p["hue"])
        one, zero = torch.ones_like(cos), torch.zeros_like(cos)
        rot = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, cos, -sin], -1),
                           torch.stack([zero, sin, cos], -1)], 1)                      # [B, 3, 3]
        m = YIQ_INV.to(x) @ rot.to(x) @ YIQ.to(x)
        x = torch.einsum("bij,bjhw->bihw", m, x)
        return torch.where(p["gray"].view(b, 1, 1, 1), luma.expand_as(x), x)

    def apply(self, x: torch.Tensor, p: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Apply drawn parameters `p` to x: float [B, C, H, W] in [0, 1]."""
        b, _, h, w = x.shape
        if self.uses_affine:
            cos, sin = torch.cos(p["angle"]), torch.sin(p["angle"])
            tan = torch.tan(p["shear"])
            inv_s = 1.0 / p["scale"]
            # theta maps output coordinates to input ones: rotation @ shear, divided by the zoom
            theta = torch.stack([
                torch.stack([cos * p["flip"] * inv_s, (cos * tan - sin) * inv_s, 2 * p["tx"]], -1),
                torch.stack([sin * p["flip"] * inv_s, (sin * tan + cos) * inv_s, 2 * p["ty"]], -1),
            ], 1).to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.cfg.brightness > 0 or self.cfg.contrast > 0:
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * p["contrast"].view(b, 1, 1, 1) + mean
            x = x * p["brightness"].view(b, 1, 1, 1)
        if x.shape[1] == 3 and "hue" in p:
            x = self.colour(x, p)
        if self.cfg.invert > 0:
            x = torch.where(p["invert"].view(b, 1, 1, 1), 1.0 - x, x)
        if self.cfg.noise > 0:
            noise = torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype)
            x = x + noise * p["noise"].view(b, 1, 1, 1)
        if self.cfg.erase_prob > 0:
            rows = torch.arange(h, device=x.device).view(1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, w)
            eh, ew = (p["erase_h"] * h).ceil(), (p["erase_w"] * w).ceil()
            y0 = (p["erase_y"] * (h - eh + 1)).floor()
            x0 = torch.where(p["erase_band"], 0.0, (p["erase_x"] * (w - ew + 1)).floor())
            ew = torch.where(p["erase_band"], float(w), ew)
            inside = ((rows >= y0.view(-1, 1, 1)) & (rows < (y0 + eh).view(-1, 1, 1))
                      & (cols >= x0.view(-1, 1, 1)) & (cols < (x0 + ew).view(-1, 1, 1)))
            mask = inside & p["erase"].view(-1, 1, 1)
            x = x.masked_fill(mask.unsqueeze(1), 0.0)
        return x.clamp(0.0, 1.0)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(x, self.sample(x.shape[0], x.device, generator, x.shape[1]), generator)
