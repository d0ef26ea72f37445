"""CPC: contrastive predictive coding along the sequence (van den Oord et al. 2018; both directions, as CPC
v2 reads an image from several sides). Each step of an augmented view gets a code from a small learned
encoder; the forward context at step t predicts the codes of steps t+1..t+K, the backward context those of
t-1..t-K (one linear map per offset), each against the codes of the other images at the same step (InfoNCE).
"""

from __future__ import annotations

import torch
from torch import nn

from ._sequence import info_nce

KEYS = {
    "cpc_steps": {"default": 3, "lo": 1, "hi": 1024, "help": "cpc: steps predicted ahead (and behind), K"},
    "code_dim": {"default": 64, "lo": 1, "hi": 65536, "help": "cpc: size of each step's code"},
    "cpc_temperature": {"default": 0.1, "lo": 1e-4, "hi": 100, "help": "cpc: InfoNCE temperature"},
}
CAUSAL = True


class CPCObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, gather_distributed: bool = False, **_):
        super().__init__()
        t, d = pipeline.seq_shape
        self.encoder, self.pipeline, self.temperature = encoder, pipeline, cfg.cpc_temperature
        if cfg.cpc_steps >= t:
            from ..errors import UserError
            raise UserError(f"objective.cpc_steps {cfg.cpc_steps} is not less than the {t} steps of a sequence; "
                            f"pass --set objective.cpc_steps=K with K < {t}")
        self.steps = cfg.cpc_steps
        self.gather = gather_distributed
        c, h = cfg.code_dim, encoder.hidden
        self.code = nn.Sequential(nn.Linear(d, c), nn.ReLU(), nn.Linear(c, c))
        self.ahead = nn.ModuleList(nn.Linear(h, c) for _ in range(self.steps))
        self.behind = nn.ModuleList(nn.Linear(h, c) for _ in range(self.steps))

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (loss, stats)."""
        view = self.pipeline.augmented(x, generator)                  # [B, T, D]
        _, (fwd, bwd) = self.encoder.encode(view)                     # [B, T, H] each
        codes = self.code(view)                                       # [B, T, C]
        everyone, offset = self.all_codes(codes)
        losses = []
        for k in range(1, self.steps + 1):
            ahead = self.ahead[k - 1](fwd[:, :-k])                    # predicts the codes of steps k..T-1
            behind = self.behind[k - 1](bwd[:, k:])                   # predicts the codes of steps 0..T-k-1
            losses.append(info_nce(ahead.transpose(0, 1), everyone[:, k:].transpose(0, 1), self.temperature, offset))
            losses.append(info_nce(behind.transpose(0, 1), everyone[:, :-k].transpose(0, 1), self.temperature, offset))
        return torch.stack(losses).mean(), {}

    def all_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The codes of every process's images (negatives from all of them under DDP) and where this
        process's images start among them."""
        if not self.gather:
            return codes, 0
        from lightly.utils import dist
        return torch.cat(dist.gather(codes)), dist.rank() * codes.shape[0]


OBJECTIVE = CPCObjective
