"""DCL: SimCLR's two views and projection head with the decoupled contrastive loss, which leaves the
positive pair out of the denominator (lightly's DCLLoss)."""

from __future__ import annotations

from lightly.loss import DCLLoss
from lightly.models.modules.heads import SimCLRProjectionHead

from ._shared import TwoViewObjective


class DCLObjective(TwoViewObjective):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__(encoder, pipeline, SimCLRProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out),
                         DCLLoss(temperature=cfg.temperature, gather_distributed=gather_distributed), "head")


OBJECTIVE = DCLObjective
