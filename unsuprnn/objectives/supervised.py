"""Supervised reference: the same encoder and augmented views, a linear classifier, cross entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ObjectiveConfig
from ..data.pipeline import SequencePipeline
from ..errors import UserError

USES_LABELS = True  # the supervised reference: `unsuprnn supervised`, never `pretrain`
MIN_BATCH = 1


class SupervisedObjective(nn.Module):
    def __init__(self, encoder: nn.Module, pipeline: SequencePipeline, cfg: ObjectiveConfig,
                 num_classes: int, **_):
        super().__init__()
        if num_classes < 2:
            raise UserError("the supervised objective needs a labelled dataset with at least 2 classes")
        self.encoder, self.pipeline = encoder, pipeline
        self.classifier = nn.Linear(encoder.out_dim, num_classes)

    def logits(self, seq: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(seq))

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        keep = y >= 0  # unlabelled samples carry no supervised signal
        logits = self.logits(self.pipeline.augmented(x[keep], generator))
        loss = F.cross_entropy(logits, y[keep])
        acc = (logits.argmax(1) == y[keep]).float().mean()
        return loss, {"acc": acc}


OBJECTIVE = SupervisedObjective
