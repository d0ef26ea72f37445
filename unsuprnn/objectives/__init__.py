"""Objective registry: name -> module class. Each objective is one file; every class takes
(encoder, pipeline, cfg, num_classes, **options) and its forward(x_uint8, y, generator)
returns (loss, stats). Objectives with a momentum teacher (byol, moco) also have
`update_teacher(momentum)`, which the training loop calls after every optimizer step."""

from __future__ import annotations

from ..errors import UserError
from .autoencoder import AutoencoderObjective
from .barlowtwins import BarlowTwinsObjective
from .byol import BYOLObjective
from .contrastive import ContrastiveObjective
from .dcl import DCLObjective
from .moco import MoCoObjective
from .nnclr import NNCLRObjective
from .simsiam import SimSiamObjective
from .supervised import SupervisedObjective
from .vicreg import VICRegObjective

OBJECTIVES = {
    "contrastive": ContrastiveObjective,
    "autoencoder": AutoencoderObjective,
    "byol": BYOLObjective,
    "simsiam": SimSiamObjective,
    "vicreg": VICRegObjective,
    "barlowtwins": BarlowTwinsObjective,
    "moco": MoCoObjective,
    "nnclr": NNCLRObjective,
    "dcl": DCLObjective,
    "supervised": SupervisedObjective,
}


def build_objective(name: str, encoder, pipeline, cfg, num_classes: int, **options):
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective '{name}'; use one of: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](encoder, pipeline, cfg, num_classes, **options)
