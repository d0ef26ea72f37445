"""`SequencePipeline`: uint8 image batch -> (augmented) normalized float -> sequence, and back."""

from __future__ import annotations

import torch

from ..config import AugmentConfig, DataConfig
from .augment import BatchAugment
from .views import make_view


class SequencePipeline(torch.nn.Module):
    """Turns x: uint8 [B, C, H, W] on any device into sequences [B, T, D].

    mean/std are per-channel, in [0, 1] units (identity when normalization is off). Held as
    buffers so they follow the model to its device and are saved with it.
    """

    def __init__(self, shape: tuple[int, int, int], view: str, patch: int, mean: list[float],
                 std: list[float], augment: AugmentConfig):
        super().__init__()
        self.shape = tuple(shape)
        self.view = make_view(view, self.shape, patch)
        self.augment = BatchAugment(augment)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def seq_shape(self) -> tuple[int, int]:
        """(T, D) of one sequence."""
        return self.view.seq_shape()

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] -> float [B, C, H, W] in [0, 1]."""
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def sequence(self, x01: torch.Tensor) -> torch.Tensor:
        """float [B, C, H, W] in [0, 1] -> normalized sequence [B, T, D]."""
        return self.view.to_sequence((x01 - self.mean) / self.std)

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> sequences, no augmentation (evaluation, export)."""
        return self.sequence(self.unit(x))

    def augmented(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images -> sequences of a randomly augmented view, parameters drawn per sample."""
        return self.sequence(self.augment(self.unit(x), generator))


def build_pipeline(data: DataConfig, augment: AugmentConfig, shape, mean, std) -> SequencePipeline:
    if not data.normalize:
        mean, std = [0.0] * shape[0], [1.0] * shape[0]
    return SequencePipeline(shape, data.view, data.patch, mean, std, augment)
