"""SimSiam: projection and predictor; each view's prediction regresses the other view's projection,
with the gradient stopped on the target (lightly's SimSiam heads and NegativeCosineSimilarity)."""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import SimSiamPredictionHead, SimSiamProjectionHead
from torch import nn

from ._shared import two_views


class SimSiamObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.projection = SimSiamProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.prediction = SimSiamPredictionHead(cfg.proj_out, cfg.pred_hidden, cfg.proj_out)
        self.criterion = NegativeCosineSimilarity()

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        b = x.shape[0]
        z = self.projection(self.encoder(two_views(self.pipeline, x, generator)))
        p = self.prediction(z)
        z = z.detach()
        return 0.5 * (self.criterion(p[:b], z[b:]) + self.criterion(p[b:], z[:b])), {}


OBJECTIVE = SimSiamObjective
