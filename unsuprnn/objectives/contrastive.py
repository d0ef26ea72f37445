"""SimCLR: two augmented views per image, lightly's projection head and NT-Xent loss."""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from torch import nn

from ..config import ObjectiveConfig
from ..data.pipeline import SequencePipeline
from ..models.encoder import RNNEncoder
from ..models.heads import SimCLRProjectionHead


class ContrastiveObjective(nn.Module):
    def __init__(self, encoder: RNNEncoder, pipeline: SequencePipeline, cfg: ObjectiveConfig,
                 num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        if cfg.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {cfg.temperature}")
        self.encoder, self.pipeline = encoder, pipeline
        self.head = SimCLRProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.criterion = NTXentLoss(temperature=cfg.temperature, gather_distributed=gather_distributed)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (loss, stats). Both views go through the encoder as one batch."""
        b = x.shape[0]
        views = torch.cat([self.pipeline.augmented(x, generator), self.pipeline.augmented(x, generator)])
        z = self.head(self.encoder(views))
        loss = self.criterion(z[:b], z[b:])
        return loss, {}


OBJECTIVE = ContrastiveObjective
