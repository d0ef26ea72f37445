"""SimCLR: two augmented views per image, lightly's projection head and NT-Xent loss."""

from __future__ import annotations

from lightly.loss import NTXentLoss
from torch import nn

from ..config import ObjectiveConfig
from ..data.pipeline import SequencePipeline
from ..models.heads import SimCLRProjectionHead
from ._shared import TwoViewObjective


class ContrastiveObjective(TwoViewObjective):
    def __init__(self, encoder: nn.Module, pipeline: SequencePipeline, cfg: ObjectiveConfig,
                 num_classes: int, gather_distributed: bool = False, **_):
        if cfg.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {cfg.temperature}")
        super().__init__(encoder, pipeline, SimCLRProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_out),
                         NTXentLoss(temperature=cfg.temperature, gather_distributed=gather_distributed), "head")


OBJECTIVE = ContrastiveObjective
