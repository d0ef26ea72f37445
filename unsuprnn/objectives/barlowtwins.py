"""Barlow Twins: the cross-correlation of the two views' projections is driven to the identity
(lightly's BarlowTwinsProjectionHead and BarlowTwinsLoss)."""

from __future__ import annotations

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules.heads import BarlowTwinsProjectionHead
from torch import nn

from ._shared import two_views


class BarlowTwinsObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.projection = BarlowTwinsProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.criterion = BarlowTwinsLoss(gather_distributed=gather_distributed)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        b = x.shape[0]
        z = self.projection(self.encoder(two_views(self.pipeline, x, generator)))
        return self.criterion(z[:b], z[b:]), {}


OBJECTIVE = BarlowTwinsObjective
