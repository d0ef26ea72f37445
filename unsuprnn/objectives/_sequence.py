"""What the sequence objectives (cpc, apc, masked) share: pure loss functions with their shapes, the span
mask, and the check that an encoder may be asked to predict ahead."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError


def require_causal(encoder, objective: str) -> None:
    """Refuse, before anything is written, an encoder whose per-step outputs cannot predict ahead both ways
    (each encoder kind says why not: `why_not_causal`, names/encoders.py)."""
    why = encoder.why_not_causal()
    if why:
        raise UserError(f"the {objective} objective predicts ahead along the sequence, and {why}")


def info_nce(pred: torch.Tensor, codes: torch.Tensor, temperature: float, offset: int = 0) -> torch.Tensor:
    """InfoNCE over groups (positions): pred [P, B, C] and codes [P, M, C] (M >= B) -> scalar.

    In group p, prediction b's positive is codes[p, offset + b] and its negatives are the group's other codes
    (the other images' codes at that position; with DDP, `offset` places this process's images among all of
    them). Cosine similarity over `temperature`, cross entropy averaged over P x B."""
    logits = torch.einsum("pbc,pmc->pbm", F.normalize(pred, dim=-1), F.normalize(codes, dim=-1)) / temperature
    target = torch.arange(pred.shape[1], device=pred.device) + offset
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.repeat(pred.shape[0]))


def span_mask(batch: int, steps: int, share: float, span: int, generator: torch.Generator | None,
              device: torch.device) -> torch.Tensor:
    """bool [batch, steps]: per sample, round(share * steps / span) spans of `span` steps, never overlapping,
    placed uniformly at random (batched: no per-sample Python). At least one span, fewer where they do not fit.

    Placement: of the spans' m tokens and the steps left free, a random m of the (free + m) slots are spans;
    the i-th span in order starts at its slot's position plus i * (span - 1)."""
    span = max(1, min(span, steps))
    m = max(1, min(round(share * steps / span), steps // span))
    free = steps - m * span
    slots = torch.rand(batch, free + m, generator=generator, device=device).argsort(dim=1)[:, :m].sort(dim=1).values
    starts = slots + torch.arange(m, device=device) * (span - 1)              # [batch, m]
    cover = (starts[:, :, None] + torch.arange(span, device=device)).reshape(batch, -1)
    return torch.zeros(batch, steps, dtype=torch.bool, device=device).scatter_(1, cover, True)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked steps only: pred, target [B, T, D], mask bool [B, T] -> scalar."""
    diff = (pred - target).pow(2).mean(-1)
    return (diff * mask).sum() / mask.sum().clamp(min=1)


def shifted_l1(ahead: torch.Tensor, behind: torch.Tensor, x: torch.Tensor, shift: int) -> torch.Tensor:
    """APC's loss: `ahead` [B, T-n, D] predicts x[:, n:], `behind` [B, T-n, D] predicts x[:, :-n] (L1, the mean
    of both directions)."""
    return 0.5 * (F.l1_loss(ahead, x[:, shift:]) + F.l1_loss(behind, x[:, :-shift]))
