"""Mix: two or more label-free objectives trained together, their losses summed on the same batch with
weights (`--objective contrastive+cpc --set objective.weights=1,0.5`). One encoder; each part keeps its own
heads and draws its own views from the batch's shared random generator, in the order the parts are named."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError

KEYS = {"weights": {"default": "", "type": "str",
                    "help": "mix: one weight per part, comma-separated (empty: 1 each)"}}
COMBINES = True  # not an objective of its own: `A+B` builds it


def parse_weights(text: str, parts: list[str]) -> list[float]:
    """objective.weights as one float >= 0 per part (empty: all 1), at least one above 0."""
    if not str(text).strip():
        return [1.0] * len(parts)
    try:
        weights = [float(w) for w in str(text).split(",")]
    except ValueError:
        raise UserError(f"objective.weights '{text}' is not a comma list of numbers; pass e.g. "
                        f"--set objective.weights={','.join(['1'] * len(parts))}") from None
    if len(weights) != len(parts):
        raise UserError(f"objective.weights '{text}' gives {len(weights)} weights for the {len(parts)} parts of "
                        f"{'+'.join(parts)}; give one per part")
    if any(not w >= 0 or w == float("inf") for w in weights) or not any(w > 0 for w in weights):
        raise UserError(f"objective.weights '{text}': each weight must be a finite number >= 0, and one above 0")
    return weights


class MixObjective(nn.Module):
    def __init__(self, encoder, pipeline, cfg, num_classes: int, parts: list[str], **options):
        super().__init__()
        from . import build_objective
        self.weights = parse_weights(cfg.weights, parts)
        self.encoder, self.pipeline = encoder, pipeline
        self.parts = nn.ModuleDict({p: build_objective(p, encoder, pipeline, cfg, num_classes, **options)
                                    for p in parts})

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """x: uint8 [B, C, H, W] -> (the weighted sum of the parts' losses, each part's loss)."""
        total, stats = 0.0, {}
        for (name, part), w in zip(self.parts.items(), self.weights):
            loss, _ = part(x, y, generator)
            total = total + w * loss
            stats[f"loss_{name}"] = loss.detach()
        return total, stats

    def update_teacher(self, momentum: float) -> None:
        """Move the momentum teachers of the parts that have one."""
        for part in self.parts.values():
            if hasattr(part, "update_teacher"):
                part.update_teacher(momentum)


OBJECTIVE = MixObjective
