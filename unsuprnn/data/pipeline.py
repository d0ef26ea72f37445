"""`SequencePipeline`: uint8 image batch -> (augmented) normalized float -> sequence, and back.

How an image's intensities are normalized (`data.intensity`):
- `keep`: every image by the train split's per-channel mean and std (brightness, contrast and polarity
  stay in the data, for the encoder to read or to ignore);
- `standardize`: each image (each augmented view) by its own mean and std over all its pixels and channels:
  its brightness and contrast are gone before the encoder sees it;
- `canonical`: each channel of each image standardized on its own, then negated where its third moment is
  negative, so that its sparse part (an object, a stroke, a dot) is the bright one: polarity (light on dark or
  dark on light) is gone too, and in colour images the colour cast and each channel's polarity (a red shape on
  blue and a blue shape on red read alike: each channel shows where it departs from the ground).
"""

from __future__ import annotations

import torch

from ..config import AugmentConfig, DataConfig
from .augment import BatchAugment
from .views import make_view, resolve_view

INTENSITIES = ("keep", "standardize", "canonical")


def standardize_images(x: torch.Tensor, polarity: bool = False, per_channel: bool = False,
                       eps: float = 1e-3) -> torch.Tensor:
    """x: float [B, C, H, W] -> each image (each channel of it, with `per_channel`) to zero mean and unit std;
    with `polarity`, also multiplied by the sign of its skewness (0 counts as +), so that its sparse part is
    bright. A flat image maps to zeros (its std is taken as at least `eps`)."""
    dims = (2, 3) if per_channel else (1, 2, 3)
    centred = x - x.mean(dim=dims, keepdim=True)
    z = centred / centred.pow(2).mean(dim=dims, keepdim=True).sqrt().clamp_min(eps)
    if polarity:
        skew = z.pow(3).mean(dim=dims, keepdim=True)
        z = torch.where(skew < 0, -z, z)
    return z


class SequencePipeline(torch.nn.Module):
    """Turns x: uint8 [B, C, H, W] on any device into sequences [B, T, D].

    mean/std are per-channel, in [0, 1] units (identity when normalization is off). Held as
    buffers so they follow the model to its device and are saved with it.
    """

    def __init__(self, shape: tuple[int, int, int], view: str, patch: int, mean: list[float],
                 std: list[float], augment: AugmentConfig, intensity: str = "keep"):
        super().__init__()
        if intensity not in INTENSITIES:
            raise ValueError(f"unknown intensity {intensity!r}; one of {INTENSITIES}")
        self.shape, self.intensity = tuple(shape), intensity
        self.view = make_view(view, self.shape, patch)
        self.augment = BatchAugment(augment)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def seq_shape(self) -> tuple[int, int]:
        """(T, D) of one sequence."""
        return self.view.seq_shape()

    @property
    def grid(self) -> tuple[int, int] | None:
        """(rows, columns) of the patch grid for the patch view, else None."""
        return self.view.grid()

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] -> float [B, C, H, W] in [0, 1]."""
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def normalized(self, x01: torch.Tensor) -> torch.Tensor:
        """float [B, C, H, W] in [0, 1] -> the normalized images the encoder reads (`data.intensity`)."""
        if self.intensity == "keep":
            return (x01 - self.mean) / self.std
        canonical = self.intensity == "canonical"
        return standardize_images(x01, polarity=canonical, per_channel=canonical)

    def sequence(self, x01: torch.Tensor) -> torch.Tensor:
        """float [B, C, H, W] in [0, 1] -> normalized sequence [B, T, D]."""
        return self.view.to_sequence(self.normalized(x01))

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> sequences, no augmentation (evaluation, export)."""
        return self.sequence(self.unit(x))

    def augmented(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images -> sequences of a randomly augmented view, parameters drawn per sample."""
        return self.sequence(self.augment(self.unit(x), generator))


def build_pipeline(data: DataConfig, augment: AugmentConfig, shape, mean, std) -> SequencePipeline:
    """The pipeline of `data` for images of `shape` (C, H, W); a view, patch or (for grey images) intensity still
    `auto` is resolved as a run resolves it (views.resolve_view, invariance.resolve_from_data), in a copy."""
    import copy
    if data.view == "auto" or data.patch == "auto":
        data = copy.deepcopy(data)
        resolve_view(data, shape)
    if data.intensity == "auto":  # (grey images need no measurement; colour ones do)
        from .invariance import GREY_INTENSITY
        if shape[0] == 3:
            raise ValueError("data.intensity is auto for colour images: resolve it from the images first "
                             "(data/invariance.py, resolve_from_data), as pretraining does")
        data = copy.deepcopy(data)
        data.intensity = GREY_INTENSITY
    if not data.normalize:
        mean, std = [0.0] * shape[0], [1.0] * shape[0]
    return SequencePipeline(shape, data.view, data.patch, mean, std, augment, data.intensity)
