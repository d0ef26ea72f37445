"""VICReg: invariance between the two views' projections, with variance and covariance terms that keep
the embedding spread (lightly's VICRegProjectionHead and VICRegLoss)."""

from __future__ import annotations

from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead

from ._shared import TwoViewObjective


class VICRegObjective(TwoViewObjective):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        head = VICRegProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out, num_layers=3)
        super().__init__(encoder, pipeline, head, VICRegLoss(gather_distributed=gather_distributed), "projection")


OBJECTIVE = VICRegObjective
