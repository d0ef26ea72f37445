"""APC: autoregressive predictive coding (Chung et al. 2019), both ways. On an augmented view, the forward
context at step t regresses step t+n and the backward context step t-n (L1 on the normalized steps)."""

from __future__ import annotations

import torch
from torch import nn

from ._sequence import shifted_l1

KEYS = {"apc_shift": {"default": 2, "lo": 1, "hi": 1024, "help": "apc: how many steps ahead (and behind), n"}}
CAUSAL = True
MIN_BATCH = 1  # each sequence is its own target


class APCObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, **_):
        super().__init__()
        t, d = pipeline.seq_shape
        if cfg.apc_shift >= t:
            from ..errors import UserError
            raise UserError(f"objective.apc_shift {cfg.apc_shift} is not less than the {t} steps of a sequence; "
                            f"pass --set objective.apc_shift=N with N < {t}")
        self.encoder, self.pipeline, self.shift = encoder, pipeline, cfg.apc_shift
        self.next = nn.Linear(encoder.hidden, d)
        self.previous = nn.Linear(encoder.hidden, d)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (loss, stats)."""
        view = self.pipeline.augmented(x, generator)                  # [B, T, D]
        _, (fwd, bwd) = self.encoder.encode(view)
        n = self.shift
        return shifted_l1(self.next(fwd[:, :-n]), self.previous(bwd[:, n:]), view, n), {}


OBJECTIVE = APCObjective
