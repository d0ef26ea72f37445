"""Masked: masked reconstruction for a bidirectional RNN (Wang, Tang and Livescu 2020). Spans of steps of an
augmented view are replaced by a learned vector; a head rebuilds only those steps from the encoder's
outputs there (both directions), mean squared error on the normalized steps."""

from __future__ import annotations

import torch
from torch import nn

from ._sequence import masked_mse, span_mask

KEYS = {
    "mask_share": {"default": 0.3, "lo": 0.01, "hi": 0.9, "help": "masked: share of the steps hidden"},
    "mask_span": {"default": 2, "lo": 1, "hi": 1024, "help": "masked: steps in one hidden span"},
}
MIN_BATCH = 1  # each sequence is its own target


class MaskedObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, **_):
        super().__init__()
        t, d = pipeline.seq_shape
        if cfg.mask_span > t:
            from ..errors import UserError
            raise UserError(f"objective.mask_span {cfg.mask_span} is longer than the {t} steps of a sequence; "
                            f"pass --set objective.mask_span=N with N <= {t}")
        self.encoder, self.pipeline = encoder, pipeline
        self.share, self.span = cfg.mask_share, cfg.mask_span
        self.token = nn.Parameter(torch.zeros(d))
        self.head = nn.Sequential(nn.Linear(encoder.step_dim, encoder.hidden), nn.ReLU(),
                                  nn.Linear(encoder.hidden, d))

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (loss, stats)."""
        view = self.pipeline.augmented(x, generator)                  # [B, T, D]
        mask = span_mask(view.shape[0], view.shape[1], self.share, self.span, generator, view.device)
        _, steps = self.encoder.encode(torch.where(mask[..., None], self.token.to(view.dtype), view))
        return masked_mse(self.head(torch.cat(steps, dim=-1)), view, mask), {}


OBJECTIVE = MaskedObjective
