"""BYOL: the online encoder, projection and predictor regress a momentum teacher's projection of the
other view (lightly's BYOL heads, NegativeCosineSimilarity and update_momentum)."""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import update_momentum
from torch import nn

from ._shared import momentum_copy, two_views


class BYOLObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.projection = BYOLProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.prediction = BYOLPredictionHead(cfg.proj_out, cfg.pred_hidden, cfg.proj_out)
        self.teacher = nn.ModuleDict({"encoder": momentum_copy(encoder), "projection": momentum_copy(self.projection)})
        self.criterion = NegativeCosineSimilarity()

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student, after every optimizer step."""
        update_momentum(self.encoder, self.teacher["encoder"], momentum)
        update_momentum(self.projection, self.teacher["projection"], momentum)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (loss, stats); the loss is symmetric over the two views."""
        b = x.shape[0]
        views = two_views(self.pipeline, x, generator)
        p = self.prediction(self.projection(self.encoder(views)))
        with torch.no_grad():
            z = self.teacher["projection"](self.teacher["encoder"](views))
        return 0.5 * (self.criterion(p[:b], z[b:]) + self.criterion(p[b:], z[:b])), {}


OBJECTIVE = BYOLObjective
