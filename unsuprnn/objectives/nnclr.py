"""NNCLR: each view's projection is replaced by its nearest neighbour in a memory bank of earlier
projections, which must predict the other view (lightly's NNCLR heads, NNMemoryBankModule, NTXentLoss)."""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import NNMemoryBankModule
from lightly.models.modules.heads import NNCLRPredictionHead, NNCLRProjectionHead
from torch import nn

from ._shared import bank_state, load_bank_state, two_views


class NNCLRObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.projection = NNCLRProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.prediction = NNCLRPredictionHead(cfg.proj_out, cfg.pred_hidden, cfg.proj_out)
        self.support = NNMemoryBankModule(size=(cfg.bank_size, cfg.proj_out))
        self.criterion = NTXentLoss(temperature=cfg.temperature, gather_distributed=gather_distributed)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        b = x.shape[0]
        z = self.projection(self.encoder(two_views(self.pipeline, x, generator)))
        p = self.prediction(z)
        z0 = self.support(z[:b].detach(), update=False)
        z1 = self.support(z[b:].detach(), update=True)
        return 0.5 * (self.criterion(z0, p[b:]) + self.criterion(z1, p[:b])), {}

    def get_extra_state(self) -> dict:
        return bank_state({"support": self.support})

    def set_extra_state(self, state: dict) -> None:
        load_bank_state({"support": self.support}, state)


OBJECTIVE = NNCLRObjective
