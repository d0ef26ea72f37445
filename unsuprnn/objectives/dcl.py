"""DCL: SimCLR's two views and projection head with the decoupled contrastive loss, which leaves the
positive pair out of the denominator (lightly's DCLLoss)."""

from __future__ import annotations

import torch
from lightly.loss import DCLLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from torch import nn

from ._shared import two_views


class DCLObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.head = SimCLRProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.criterion = DCLLoss(temperature=cfg.temperature, gather_distributed=gather_distributed)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        b = x.shape[0]
        z = self.head(self.encoder(two_views(self.pipeline, x, generator)))
        return self.criterion(z[:b], z[b:]), {}


OBJECTIVE = DCLObjective
