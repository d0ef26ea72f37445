"""Barlow Twins: the cross-correlation of the two views' projections is driven to the identity
(lightly's BarlowTwinsProjectionHead and BarlowTwinsLoss)."""

from __future__ import annotations

from lightly.loss import BarlowTwinsLoss
from lightly.models.modules.heads import BarlowTwinsProjectionHead

from ._shared import TwoViewObjective


class BarlowTwinsObjective(TwoViewObjective):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__(encoder, pipeline, BarlowTwinsProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out),
                         BarlowTwinsLoss(gather_distributed=gather_distributed), "projection")


OBJECTIVE = BarlowTwinsObjective
