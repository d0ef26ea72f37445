"""MoCo (v2): a query view through the encoder against a key view through a momentum teacher, with
negatives from a memory bank of earlier keys (lightly's MoCoProjectionHead, update_momentum and
NTXentLoss(memory_bank_size=(n, dim)))."""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import MoCoProjectionHead
from lightly.models.utils import update_momentum
from torch import nn

from ._shared import bank_state, load_bank_state, momentum_copy


class MoCoObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        self.projection = MoCoProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out)
        self.teacher = nn.ModuleDict({"encoder": momentum_copy(encoder), "projection": momentum_copy(self.projection)})
        self.criterion = NTXentLoss(temperature=cfg.temperature, memory_bank_size=(cfg.bank_size, cfg.proj_out),
                                    gather_distributed=gather_distributed)

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        update_momentum(self.encoder, self.teacher["encoder"], momentum)
        update_momentum(self.projection, self.teacher["projection"], momentum)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        query = self.projection(self.encoder(self.pipeline.augmented(x, generator)))
        with torch.no_grad():
            key = self.teacher["projection"](self.teacher["encoder"](self.pipeline.augmented(x, generator)))
        return self.criterion(query, key), {}  # the keys enter the memory bank

    def get_extra_state(self) -> dict:
        return bank_state({"negatives": self.criterion.memory_bank})

    def set_extra_state(self, state: dict) -> None:
        load_bank_state({"negatives": self.criterion.memory_bank}, state)


OBJECTIVE = MoCoObjective
