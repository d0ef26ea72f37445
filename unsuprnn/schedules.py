"""Per-step schedules, precomputed before training (as dino does): the learning rate (linear warmup,
then cosine to 0) and a momentum teacher's momentum (lightly's cosine schedule to 1)."""

from __future__ import annotations

import math

import torch
from lightly.utils.scheduler import cosine_schedule


def lr_schedule(base_lr: float, total_steps: int, warmup_steps: int) -> torch.Tensor:
    """Per-step learning rates [total_steps]: linear warmup from 0, then cosine decay to 0. With
    base_lr 1 it is a multiplier, which the clustering stage applies to each parameter group's own rate."""
    steps = torch.arange(total_steps, dtype=torch.float64)
    warm = base_lr * (steps + 1) / max(warmup_steps, 1)
    progress = (steps - warmup_steps) / max(total_steps - warmup_steps, 1)
    cos = base_lr * 0.5 * (1 + torch.cos(math.pi * progress.clamp(0, 1)))
    return torch.where(steps < warmup_steps, warm, cos)


MAX_WARMUP = 0.1  # share of a run's steps that warm-up may take: a short run still decays to its end


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """Warm-up steps: `warmup_epochs` epochs, at most MAX_WARMUP of the run."""
    return min(int(warmup_epochs * steps_per_epoch), int(MAX_WARMUP * total_steps))


def stretched(values: list[float], done: int, total: int, high: float, low: float, last_at_end: bool) -> list[float]:
    """A cosine schedule (values[i] = low + (high - low) * (1 + cos(pi * p_i)) / 2, p rising linearly to 1)
    re-planned at step `done` to last `total` steps: the steps before keep their values, and from `done` on p
    continues from where it stood, linearly, to 1 at step `total` (`last_at_end`: at step `total - 1`, as
    lightly's momentum schedule does). What a --budget run's learning rate and teacher momentum follow when the
    run is re-planned: no jump, and the cosine still ends with the run."""
    if done >= len(values) or high == low:
        return values[:done] + [values[-1] if values else low] * (total - done)
    p0 = math.acos(max(-1.0, min(1.0, 2 * (values[done] - low) / (high - low) - 1))) / math.pi
    end = total - done - (1 if last_at_end else 0)
    tail = [p0 + (1 - p0) * min(i / max(end, 1), 1.0) for i in range(total - done)]
    return values[:done] + [low + (high - low) * 0.5 * (1 + math.cos(math.pi * p)) for p in tail]


def momentum_schedule(start: float, total_steps: int) -> list[float]:
    """Teacher momentum per step: lightly's cosine schedule from `start` to 1 (BYOL, MoCo)."""
    return [cosine_schedule(step, total_steps, start, 1.0) for step in range(total_steps)]
