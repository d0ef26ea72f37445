"""What several objectives share: their config keys, two augmented views, and what an objective keeps
beside its trained weights (momentum teachers and memory banks).

lightly registers a memory bank's contents as non-persistent buffers, so they would be missing from a
checkpoint; `bank_state`/`load_bank_state` carry them through `get_extra_state`/`set_extra_state`,
and a resumed run continues with the very bank it stopped with.
"""

from __future__ import annotations

import copy

import torch
from lightly.models.utils import deactivate_requires_grad
from torch import nn

# objective.KEY settings read by several objectives (see objectives/__init__.py for the form)
KEYS = {
    "temperature": {"default": 0.2, "lo": 1e-4, "hi": 100, "flag": "--temperature",
                    "help": "Temperature of NT-Xent (contrastive, moco, nnclr) and DCL."},
    "proj_hidden": {"default": 512, "lo": 1, "hi": 65536, "help": "projection head of every joint-embedding method"},
    "proj_out": {"default": 128, "lo": 1, "hi": 65536, "help": "projection head's output width"},
    "pred_hidden": {"default": 512, "lo": 1, "hi": 65536, "help": "predictor head (byol, simsiam, nnclr)"},
    "momentum": {"default": 0.99, "lo": 0, "hi": 1, "note": "teacher momentum at the first step, cosine to 1 (byol, moco)"},
    "bank_size": {"default": 4096, "lo": 1, "hi": 1048576, "help": "memory bank: negatives (moco), support set (nnclr)"},
}


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of `module`: a momentum teacher, updated only by `update_momentum`."""
    teacher = copy.deepcopy(module)
    deactivate_requires_grad(teacher)
    return teacher


def two_views(pipeline, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Two independently augmented sequence views of uint8 images x [B, C, H, W] -> [2B, T, D]."""
    return torch.cat([pipeline.augmented(x, generator), pipeline.augmented(x, generator)])


class TwoViewObjective(nn.Module):
    """Two augmented views of each image through the encoder and a projection head (registered as
    `head_name`), and a loss between the two halves: SimCLR, DCL, Barlow Twins, VICReg."""

    def __init__(self, encoder: nn.Module, pipeline, head: nn.Module, criterion: nn.Module, head_name: str):
        super().__init__()
        self.encoder, self.pipeline = encoder, pipeline
        setattr(self, head_name, head)
        self.criterion, self.head_name = criterion, head_name

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (loss, stats). Both views go through the encoder as one batch."""
        b = x.shape[0]
        z = getattr(self, self.head_name)(self.encoder(two_views(self.pipeline, x, generator)))
        return self.criterion(z[:b], z[b:]), {}


def bank_state(banks: dict[str, nn.Module]) -> dict:
    """{name: {"bank": tensor, "ptr": tensor}} of lightly memory banks (MemoryBankModule)."""
    return {name: {"bank": b.bank.detach().clone(), "ptr": b.bank_ptr.detach().clone()} for name, b in banks.items()}


def load_bank_state(banks: dict[str, nn.Module], state: dict) -> None:
    for name, b in banks.items():
        if b.bank.shape != state[name]["bank"].shape:
            raise ValueError(f"memory bank {name} is {tuple(state[name]['bank'].shape)} in the checkpoint, "
                             f"{tuple(b.bank.shape)} here")
        b.bank = state[name]["bank"].to(b.bank.device).clone()
        b.bank_ptr = state[name]["ptr"].to(b.bank_ptr.device).clone()
