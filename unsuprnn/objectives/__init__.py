"""Objective registry: name -> module class. Each objective is one file; every class takes
(encoder, pipeline, cfg, num_classes, **options) and its forward(x_uint8, y, generator)
returns (loss, stats)."""

from __future__ import annotations

from ..errors import UserError
from .autoencoder import AutoencoderObjective
from .contrastive import ContrastiveObjective
from .supervised import SupervisedObjective

OBJECTIVES = {
    "contrastive": ContrastiveObjective,
    "autoencoder": AutoencoderObjective,
    "supervised": SupervisedObjective,
}


def build_objective(name: str, encoder, pipeline, cfg, num_classes: int, **options):
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective '{name}'; use one of: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](encoder, pipeline, cfg, num_classes, **options)
