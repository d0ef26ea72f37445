"""VICReg: invariance between the two views' projections, with variance and covariance terms that keep
the embedding spread (lightly's VICRegProjectionHead and VICRegLoss)."""

from __future__ import annotations

import torch
from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from torch import nn

from ._shared import two_views


class VICRegObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.projection = VICRegProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out, num_layers=3)
        self.criterion = VICRegLoss(gather_distributed=gather_distributed)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        b = x.shape[0]
        z = self.projection(self.encoder(two_views(self.pipeline, x, generator)))
        return self.criterion(z[:b], z[b:]), {}


OBJECTIVE = VICRegObjective
